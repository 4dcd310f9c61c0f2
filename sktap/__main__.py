"""Command line: ``python -m sktap demo`` (also the ``sktap`` console script)."""

from __future__ import annotations

import argparse
import sys


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="sktap", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    demo = sub.add_parser("demo", help="compare TAP with DTW and soft-DTW 1-NN")
    demo.add_argument("--dataset", choices=["trace", "warped", "all"], default="all")
    demo.add_argument("--device", default="auto")
    demo.add_argument("--quick", action="store_true", help="smaller data, seconds")
    demo.add_argument("--out", default="sktap_demo_output", help="folder for pictures")
    args = parser.parse_args(argv)
    from ._demo import run_demo

    run_demo(dataset=args.dataset, device=args.device, quick=args.quick, out=args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
