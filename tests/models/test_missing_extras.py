"""Without torch or gensim everything else imports and works; NCF and item2vec name their extra."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

# a meta-path finder that makes torch and gensim look uninstalled, then the CLI
BLOCKED = """
import sys

class _Block:
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in ("torch", "gensim"):
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)
        return None

sys.meta_path.insert(0, _Block())
if sys.argv[1] == "python":
    exec(sys.argv[2])
else:
    from lensrec.cli import main
    sys.exit(main(sys.argv[1:]))
"""


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.run(
        [sys.executable, "-c", BLOCKED, *args], capture_output=True, text=True, env=env,
        timeout=120, cwd=ROOT,
    )  # fmt: skip


def test_asking_for_ncf_or_item2vec_names_the_extra_in_one_line():
    for model, extra, module in (("ncf", "neural", "torch"), ("item2vec", "item2vec", "gensim")):
        out = _run("evaluate", "--dataset", "ml-100k", "--split", "last:3", "--model", model)
        assert out.returncode == 2, out.stderr
        # progress notes may come first; the error is one line, the last
        errors = [line for line in out.stderr.splitlines() if "error" in line]
        assert len(errors) == 1 and out.stderr.strip().endswith(errors[0]), out.stderr
        assert f"'{extra}' extra" in errors[0] and f"lensrec[{extra}]" in errors[0]
        assert module in errors[0] and "Traceback" not in out.stderr


def test_everything_else_works_without_them():
    code = (
        "import lensrec, numpy as np\n"
        "from lensrec.models import MODELS\n"
        "from lensrec.data.planted import make_blocks\n"
        "data = make_blocks(random_state=0)[0]\n"
        "m = MODELS['item-knn']().fit(data)\n"
        "assert m.recommend([0], k=3)[0].shape == (1, 3)\n"
        "import sys; assert 'torch' not in sys.modules and 'gensim' not in sys.modules\n"
        "print('ok')\n"
    )
    out = _run("python", code)
    assert out.returncode == 0 and out.stdout.strip() == "ok", out.stderr
    listed = _run("models")
    assert listed.returncode == 0, listed.stderr
    assert "ncf: unavailable" in listed.stdout and "lensrec[neural]" in listed.stdout
    assert "item2vec: unavailable" in listed.stdout and "als  (ALS)" in listed.stdout
