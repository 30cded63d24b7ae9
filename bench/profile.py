"""Where the worker's time goes: one run under cProfile, summarised into ``bench/profiles/``.

    python -m bench.profile cpu      10,000 DELETEs at 16 in flight (the per-request path)
    python -m bench.profile resume   a rerun of 1,000,000 settled ids (the resume path)

Each starts ``bench.reference``, runs ``worker.cli.main`` in this process under cProfile
(the main thread only: the count made meanwhile runs in a thread of its own) and writes the
functions that took the most time, by own time and by cumulative time, to
``bench/profiles/<kind>-<label>.txt`` (``--label``, default ``now``). Profiling slows
Python code several times over: read the shares, not the seconds.
"""

from __future__ import annotations

import argparse
import cProfile
import io
import os
import pstats
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path

from bench.harness import TOKEN, ReferenceServer, write_ids
from bench.resume import write_settled

HERE = Path(__file__).resolve().parent


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.profile")
    parser.add_argument("kind", choices=["cpu", "resume"])
    parser.add_argument("--label", default="now", help="file name suffix (before, after, ...)")
    parser.add_argument("--top", type=int, default=25)
    args = parser.parse_args(argv)
    os.environ["DEVIN_API_KEY"] = TOKEN
    os.environ.setdefault("PYDANTIC_DISABLE_PLUGINS", "__all__")
    with tempfile.TemporaryDirectory(prefix="devin-profile-") as scratch:
        work = Path(scratch)
        with ReferenceServer() as ref:
            inputs, results, concurrency = _inputs(args.kind, work)
            run_argv = [
                "run", str(inputs), "--org-id", "org-bench", "--base-url", ref.base_url,
                "--rate", "0", "--concurrency", str(concurrency), "--results", str(results),
                "--yes", "--log-format", "json", "--progress", "off",
            ]  # fmt: skip
            from worker.cli import main as worker_main

            profiler = cProfile.Profile()
            code = profiler.runcall(worker_main, run_argv)
    out = HERE / "profiles" / f"{args.kind}-{args.label}.txt"
    out.parent.mkdir(exist_ok=True)
    out.write_text(_summary(profiler, args.top, f"{args.kind}, exit {code}"))
    print(f"wrote {out}")
    return 0


def _inputs(kind: str, work: Path) -> tuple[Path, Path, int]:
    if kind == "cpu":
        ids = [f"devin-profile{i:08d}" for i in range(10_000)]
        return write_ids(work / "ids.csv", ids), work / "results.jsonl", 16
    inputs, log = write_settled(work, 1_000_000)
    return inputs, log, 32


def _summary(profiler: cProfile.Profile, top: int, title: str) -> str:
    text = io.StringIO()
    stats = pstats.Stats(profiler, stream=text)
    stats.strip_dirs()
    text.write(f"# {title}; python {sys.version.split()[0]}\n\n## by own time\n")
    stats.sort_stats("tottime").print_stats(top)
    text.write("\n## by cumulative time\n")
    stats.sort_stats("cumulative").print_stats(top)
    return "\n".join(line.rstrip() for line in text.getvalue().splitlines()) + "\n"


if __name__ == "__main__":
    sys.exit(main())
