"""``python -m bench run [--smoke] [--out docs/benchmarks.md] [--only SECTIONS]`` and ``python -m bench report``.

``run`` measures and writes the Markdown report, its JSON (same name, ``.json``) and the
plot (``<name>-scale.png``, when matplotlib is installed). ``--smoke`` runs tiny sizes in
a minute or two, to prove the harness works (CI); the full run takes about half an hour.
``--only review,http`` re-runs some sections and merges them into the existing JSON.
``report`` re-renders the Markdown and plot from the JSON without measuring.
``worker NAME ARGS`` is internal: one measurement in a fresh process.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="cmd", required=True)
    run_p = sub.add_parser("run", help="measure and write the report")
    run_p.add_argument("--smoke", action="store_true", help="tiny sizes: proves the harness works, numbers mean little")
    run_p.add_argument("--out", type=Path, default=Path("docs/benchmarks.md"))
    run_p.add_argument("--only", default=None, help="comma-separated sections: review,cold,http,crossover,scale,updates,cmrc-build")
    rep_p = sub.add_parser("report", help="re-render the report from its JSON")
    rep_p.add_argument("--out", type=Path, default=Path("docs/benchmarks.md"))
    work_p = sub.add_parser("worker", help=argparse.SUPPRESS)
    work_p.add_argument("name")
    work_p.add_argument("args")
    ns = parser.parse_args(argv)

    if ns.cmd == "run":
        from bench.run import run

        run(ns.out, ns.smoke, [s.strip() for s in ns.only.split(",") if s.strip()] if ns.only else None)
    elif ns.cmd == "report":
        from bench import report

        report.write(json.loads(ns.out.with_suffix(".json").read_text(encoding="utf-8")), ns.out)
    else:
        from bench.common import emit
        from bench.workers import WORKERS

        emit(WORKERS[ns.name](json.loads(ns.args)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
