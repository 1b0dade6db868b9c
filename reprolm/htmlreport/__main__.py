"""``python -m reprolm.htmlreport --name NAME --output DIR ARTIFACT...``: write the report files.

Run by the workflow's ``report`` rule; exit 2 with one line naming the file on bad input.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from reprolm.htmlreport import ReportInputError, load_run, write_report


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m reprolm.htmlreport", description=__doc__)
    parser.add_argument("--name", required=True, help="the recipe's name (page titles)")
    parser.add_argument("--output", required=True, type=Path, help="directory to write into")
    parser.add_argument("artifacts", nargs="+", type=Path, help="artifact dirs or manifests")
    args = parser.parse_args(argv)
    try:
        run = load_run(args.artifacts, args.name)
        written = write_report(run, args.output)
    except ReportInputError as error:
        print(f"reprolm report: {error}", file=sys.stderr)
        return 2
    except OSError as error:
        print(f"reprolm report: cannot write {args.output}: {error}", file=sys.stderr)
        return 2
    for path in written:
        print(f"reprolm report: wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
