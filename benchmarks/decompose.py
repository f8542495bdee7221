"""Double-DIP decomposition benchmarks: runs each task's benchmark module and prints markdown.

    python benchmarks/decompose.py [--tasks segment,separate,watermark,dehaze] [--seconds 120] [--size 128]

Each ``benchmarks/bench_<task>.py`` also runs alone; see its ``--help``. Results go to stdout
(markdown), for BENCHMARKS.md.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from pathlib import Path

TASKS = ("segment", "separate", "watermark", "dehaze")


def main(argv: list[str] | None = None) -> str:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--tasks", default=",".join(TASKS), help="comma-separated subset of " + ", ".join(TASKS)
    )
    parser.add_argument("--seconds", type=float, default=120.0, help="time budget per Double-DIP run")
    parser.add_argument("--size", type=int, default=128, help="image height and width")
    args, rest = parser.parse_known_args(argv)
    sys.path.insert(0, str(Path(__file__).parent))
    sections = []
    for task in args.tasks.split(","):
        if task not in TASKS:
            parser.error(f"unknown task {task!r}; choose from {TASKS}")
        module = importlib.import_module(f"bench_{task}")
        sections.append(module.main(["--seconds", str(args.seconds), "--size", str(args.size), *rest]))
    report = "\n\n".join(sections)
    print(report)
    return report


if __name__ == "__main__":
    main()
