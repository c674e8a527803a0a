"""Entry point for ``spark-submit``: ``spark-submit $(python -c 'import lensrec.spark.submit
as m; print(m.__file__)') evaluate --dataset hdfs:///ratings --split last:3``.

The arguments are those of ``lensrec spark ...``; the session is the one spark-submit made.
"""

from __future__ import annotations

import sys


def main(argv: list[str] | None = None) -> int:
    from lensrec.cli import main as cli_main

    return cli_main(["spark", *(sys.argv[1:] if argv is None else argv)])


if __name__ == "__main__":
    sys.exit(main())
