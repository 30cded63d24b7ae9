"""``python -m bench`` (``make bench``): every scenario in turn, then results.json and REPORT.md.

    python -m bench                      the full set, 3 to 4 minutes on 2 cores
    python -m bench --only rate,adaptive some scenarios (merged into the existing results)
    python -m bench --quick              small sizes, one repetition (written to bench/_quick/)

A benchmark never fails on a goal: goals not met are reported, the exit code stays 0. A
scenario that crashes is reported as such and the others still run.
"""

from __future__ import annotations

import argparse
import importlib
import os
import shutil
import sys
import tempfile
import time
import traceback
from collections.abc import Sequence
from pathlib import Path

from bench.harness import Scenario
from bench.report import machine_info, write_outputs

SCENARIOS = (
    "startup",
    "rate",
    "latency",
    "adaptive",
    "soak",
    "cost",
    "memory",
    "flaky",
    "mixed",
    "ceiling",
    "schedule",
    "cpu",
    "first_request",
    "resume",
    "fleet",
)
HERE = Path(__file__).resolve().parent


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.split("\n")[0])
    parser.add_argument("--only", help=f"comma-separated subset of {','.join(SCENARIOS)}")
    parser.add_argument("--quick", action="store_true", help="small sizes, for development")
    parser.add_argument("--out", type=Path, help="output directory (default bench/)")
    parser.add_argument("--keep-work", action="store_true", help="keep the scratch directory")
    args = parser.parse_args(argv)
    names = _selected(args.only, parser)
    out = args.out or (HERE / "_quick" if args.quick else HERE)
    out.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="devin-bench-"))
    meta = machine_info(quick=args.quick)
    started = time.perf_counter()
    done: list[Scenario] = []
    try:
        for name in names:
            done.append(_run_one(name, work, out, args.quick, meta))
    finally:
        if args.keep_work:
            print(f"scratch files kept in {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)
    total = meta["total_seconds"] = round(time.perf_counter() - started, 1)
    paths = write_outputs(out, done, meta, partial=args.only is not None)
    print(f"\ndone in {total} s; wrote " + ", ".join(str(p) for p in paths))
    return 0


def _selected(only: str | None, parser: argparse.ArgumentParser) -> list[str]:
    if only is None:
        return list(SCENARIOS)
    names = [n.strip() for n in only.split(",") if n.strip()]
    unknown = [n for n in names if n not in SCENARIOS]
    if unknown:
        parser.error(f"unknown scenario {', '.join(unknown)}; choose from {', '.join(SCENARIOS)}")
    return names


def _run_one(name: str, work: Path, out: Path, quick: bool, meta: dict[str, object]) -> Scenario:
    print(f"\n== {name}", flush=True)
    scratch = work / name
    loads = meta.setdefault("scenario_load_at_start", {})
    assert isinstance(loads, dict)
    loads[name] = round(os.getloadavg()[0], 2)
    scratch.mkdir()
    sc = Scenario(name=name, work=scratch, plots=out, quick=quick)
    began = time.perf_counter()
    try:
        importlib.import_module(f"bench.{name}").run(sc)
    except Exception:
        sc.note("the scenario crashed; its figures are missing:\n" + traceback.format_exc())
    seconds = round(time.perf_counter() - began, 1)
    durations = meta.setdefault("scenario_seconds", {})
    assert isinstance(durations, dict)
    durations[name] = seconds
    print(f"   ({seconds} s)", flush=True)
    return sc


if __name__ == "__main__":
    sys.exit(main())
