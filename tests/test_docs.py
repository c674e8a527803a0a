"""docs/architecture.md keeps up with the code it maps (issue 22, item 12)."""

from __future__ import annotations

import inspect
import typing
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DOC = (ROOT / "docs" / "architecture.md").read_text(encoding="utf-8")


def test_layout_lists_every_model_file():
    models = sorted(p.name for p in (ROOT / "lensrec" / "models").glob("*.py")
                    if not p.name.startswith("_") and p.name != "base.py")  # fmt: skip
    assert len(models) >= 14
    missing = [m for m in models if m not in DOC]
    assert not missing, f"docs/architecture.md does not list {missing}"


def test_predict_missing_options_are_documented():
    from lensrec.models.base import RatingPredictor

    hint = typing.get_type_hints(RatingPredictor.predict)["missing"]
    options = typing.get_args(hint)
    assert set(options) >= {"raise", "nan", "baseline"}
    line = next(x for x in DOC.splitlines() if "predict(users, items, missing=" in x)
    assert all(f'"{o}"' in line for o in options), line
    assert inspect.signature(RatingPredictor.predict).parameters["missing"].default == "raise"


def test_ci_runs_the_readme_quick_start_commands_verbatim():
    """The README's quick start is two commands (install + main job, install + tests) and
    .ci/run runs both as written, so what CI checks is what a newcomer types."""
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    start = readme.index("## Quick start")
    block = readme[
        readme.index("```bash", start) + 7 : readme.index("```", readme.index("```bash", start) + 7)
    ]
    commands = [x for x in block.splitlines() if x.strip() and not x.lstrip().startswith("#")]
    assert len(commands) == 2, commands
    assert "lensrec benchmark" in commands[0] and "pytest" in commands[1]
    ci = (ROOT / ".ci" / "run").read_text(encoding="utf-8")
    joined = " ".join(ci.replace("\\\n", " ").split())
    for command in commands:
        assert " ".join(command.split()) in joined, command
