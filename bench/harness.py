"""What every scenario shares: the simulator as its own process, the worker CLI as a measured
subprocess, figures with their goals, and the scenario context (sizes, work directory).

The simulator and the client under test run as separate processes so that they do not
share one interpreter lock or event loop; on a 2-core machine each gets a core. A child's
CPU time and peak RSS come from ``os.wait4`` on that child alone, so nothing else the
benchmark process did is counted.
"""

from __future__ import annotations

import json
import os
import re
import statistics
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, Self

from worker.fleet.server import stop_process

TOKEN = "cog_bench_token"
ORG_ID = "org-bench"
# A simulator population is about 75% terminable (the rest already exited or errored).
TERMINABLE_SHARE = 0.75
_URL_LINE = re.compile(r"devin simulator at (http://\S+)")


@dataclass(slots=True)
class Figure:
    """One measured figure beside its goal. ``met`` is None when no goal was set."""

    value: float | None
    unit: str
    goal: str | None = None
    met: bool | None = None
    runs: list[float] = field(default_factory=list)
    note: str | None = None

    def as_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "value": self.value,
            "goal": self.goal,
            "unit": self.unit,
            "met": self.met,
        }
        if self.runs:
            data["runs"] = self.runs
        if self.note:
            data["note"] = self.note
        return data


@dataclass(slots=True)
class Scenario:
    """Where a scenario writes, how big it may be, and what it found."""

    name: str
    work: Path
    plots: Path
    quick: bool
    figures: dict[str, Figure] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    def add(self, name: str, figure: Figure) -> Figure:
        self.figures[name] = figure
        shown = "n/a" if figure.value is None else f"{figure.value:g}"
        verdict = {True: "met", False: "NOT MET", None: "no goal"}[figure.met]
        goal = f"  goal {figure.goal}" if figure.goal else ""
        print(f"  {self.name}.{name}: {shown} {figure.unit}{goal}  [{verdict}]", flush=True)
        return figure

    def note(self, text: str) -> None:
        self.notes.append(text)
        print(f"  note: {text}", flush=True)


@dataclass(frozen=True, slots=True)
class ChildUsage:
    """What one finished child process cost: wall seconds, CPU seconds, peak RSS (MiB).

    The peak RSS is of the process started (its children, such as ``curl`` under
    ``xargs``, are not included).
    """

    exit_code: int
    wall_s: float
    cpu_s: float
    max_rss_mib: float


def run_measured(
    argv: Sequence[str],
    *,
    env: dict[str, str] | None = None,
    stdout: Path | None = None,
    stderr: Path | None = None,
    stdin: Path | None = None,
    timeout: float = 600.0,
) -> ChildUsage:
    """Run ``argv`` to its end and measure that child alone (``os.wait4``)."""
    with _opened(stdout, "wb") as out, _opened(stderr, "wb") as err, _opened(stdin, "rb") as inp:
        started = time.perf_counter()
        proc = subprocess.Popen(list(argv), env=env, stdout=out, stderr=err, stdin=inp)
        deadline = started + timeout
        peak_kib = 0
        while True:
            peak_kib = max(peak_kib, _high_water_kib(proc.pid))
            pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
            if pid:
                break
            if time.perf_counter() > deadline:
                proc.kill()
            time.sleep(0.01)
        wall = time.perf_counter() - started
    proc.returncode = os.waitstatus_to_exitcode(status)
    return ChildUsage(
        exit_code=proc.returncode,
        wall_s=wall,
        cpu_s=usage.ru_utime + usage.ru_stime,
        max_rss_mib=peak_kib / 1024,
    )


def _high_water_kib(pid: int) -> int:
    """The process's peak RSS so far (VmHWM), 0 once it has exited.

    Not ``ru_maxrss``: on Linux that starts from the RSS of the forking parent (the
    benchmark itself, with matplotlib and a million ids loaded), so small children would
    all show the parent's size.
    """
    try:
        with open(f"/proc/{pid}/status", "rb") as fh:
            for line in fh:
                if line.startswith(b"VmHWM:"):
                    return int(line.split()[1])
    except (OSError, ValueError):
        pass
    return 0


@contextmanager
def _opened(path: Path | None, mode: str) -> Iterator[Any]:
    if path is None:
        yield subprocess.DEVNULL
        return
    with open(path, mode) as fh:
        yield fh


def worker_env() -> dict[str, str]:
    env = dict(os.environ)
    env["DEVIN_API_KEY"] = TOKEN
    env["PYTHONHASHSEED"] = "0"
    # the warm-up runs write the bytecode an installed package has (pip compiles it)
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    for name in list(env):
        if name.startswith("DEVIN_TERMINATE_"):
            del env[name]  # the benchmark's flags are the whole configuration
    return env


def worker_run_argv(
    inputs: Sequence[Path],
    *,
    base_url: str,
    results: Path,
    rate: float,
    concurrency: int | str,
    extra: Sequence[str] = (),
) -> list[str]:
    return [
        sys.executable,
        "-m",
        "worker",
        "run",
        *map(str, inputs),
        "--org-id",
        ORG_ID,
        "--base-url",
        base_url,
        "--rate",
        f"{rate:g}",
        "--concurrency",
        str(concurrency),
        "--results",
        str(results),
        "--yes",
        "--log-format",
        "json",
        "--progress",
        "off",
        *extra,
    ]


class _Served:
    """A server in its own process for the ``with`` block; its first stderr line says where."""

    _argv: list[str]
    _started = _URL_LINE
    _name = "server"

    def __init__(self) -> None:
        self._proc: subprocess.Popen[bytes] | None = None
        self.base_url = ""

    def __enter__(self) -> Self:
        self._proc = subprocess.Popen(
            self._argv, stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, env=worker_env()
        )
        assert self._proc.stderr is not None
        line = self._proc.stderr.readline().decode()
        match = self._started.search(line)
        if match is None:
            self._proc.kill()
            raise RuntimeError(f"the {self._name} did not start: {line!r}")
        self.base_url = match.group(1)
        return self

    def __exit__(self, *exc: object) -> None:
        if self._proc is not None:
            stop_process(self._proc, grace=10.0)
            if self._proc.stderr is not None:
                self._proc.stderr.close()

    def _get(self, path: str) -> dict[str, Any]:
        with urllib.request.urlopen(f"{self.base_url}{path}", timeout=30) as resp:
            data: dict[str, Any] = json.load(resp)
        return data

    def _post(self, path: str) -> None:
        request = urllib.request.Request(f"{self.base_url}{path}", method="POST")
        with urllib.request.urlopen(request, timeout=30):
            pass


class Simulator(_Served):
    """``python -m worker simulate`` in its own process, for the ``with`` block."""

    _name = "simulator"

    def __init__(self, work: Path, *, sessions: int, args: Sequence[str] = ()) -> None:
        super().__init__()
        self.ids_path = work / "sim-ids.csv"
        self._argv = [
            sys.executable,
            "-m",
            "worker",
            "simulate",
            "--port",
            "0",
            "--sessions",
            str(sessions),
            "--seed",
            "7",
            "--token",
            TOKEN,
            "--org-id",
            ORG_ID,
            "--write-ids",
            str(self.ids_path),
            *args,
        ]

    def ids(self) -> list[str]:
        lines = self.ids_path.read_text().split()
        return lines[1:]  # the header row

    def stats(self) -> dict[str, Any]:
        data = self._get("/_simulator/stats")
        data.pop("deletes_by_session", None)
        return data

    def reset_stats(self) -> None:
        self._post("/_simulator/reset-stats")


class ReferenceServer(_Served):
    """``python -m bench.reference`` (a plain server, not our simulator) for the ``with`` block."""

    _started = re.compile(r"reference server at (http://\S+)")
    _name = "reference server"

    def __init__(self) -> None:
        super().__init__()
        self._argv = [
            sys.executable, "-m", "bench.reference", "--port", "0", "--token", TOKEN,
            "--org-id", ORG_ID,
        ]  # fmt: skip

    def stats(self) -> dict[str, Any]:
        return self._get("/_reference/stats")

    def reset(self) -> None:
        self._post("/_reference/reset")


def sessions_for(terminable: int) -> int:
    """A population size that holds at least ``terminable`` terminable sessions."""
    return int(terminable / TERMINABLE_SHARE * 1.05) + 50


def write_ids(path: Path, ids: Sequence[str]) -> Path:
    path.write_text("session_id\n" + "".join(f"{sid}\n" for sid in ids))
    return path


def served_rate(stats: dict[str, Any], *, accepted_only: bool = False) -> float | None:
    """Requests per second the simulator received between its first and last request."""
    first, last = stats.get("first_request_at"), stats.get("last_request_at")
    if first is None or last is None or last <= first:
        return None
    count = stats["requests_total"]
    if accepted_only:
        count -= stats.get("throttled", 0)
    return float((count - 1) / (last - first))


def median(values: Sequence[float]) -> float:
    return float(statistics.median(values))


def read_json_lines(path: Path) -> Iterator[dict[str, Any]]:
    with open(path, "rb") as fh:
        for line in fh:
            if line.startswith(b"{"):
                try:
                    yield json.loads(line)
                except ValueError:
                    continue


def iso_seconds(text: str) -> float:
    """Unix seconds of an ISO-8601 UTC stamp as the worker writes them (``...Z``)."""
    return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


def settled_per_second(results: Path, t0: float | None = None) -> list[int]:
    """Sessions settled in each whole second of a result log, from ``t0`` (default: first)."""
    stamps = [
        iso_seconds(r["ts"]) for r in read_json_lines(results) if r.get("event") == "session.result"
    ]
    if not stamps:
        return []
    start = min(stamps) if t0 is None else t0
    counts = [0] * (int(max(stamps) - start) + 1)
    for stamp in stamps:
        counts[max(0, int(stamp - start))] += 1
    return counts


def add_rate_figures(
    sc: Scenario, share_name: str, rates: list[float], bound: float, fraction: float
) -> None:
    """The median achieved rate of ``rates`` and its share of ``bound``, goal ``fraction``."""
    achieved = median(rates)
    met = achieved >= fraction * bound
    goal = f">= {fraction * bound:g} ({fraction:.0%} of {bound:g})"
    runs = [round(r, 1) for r in rates]
    sc.add("achieved_rate", Figure(round(achieved, 1), "req/s", goal, met, runs=runs))
    sc.add(share_name, Figure(round(achieved / bound, 4), "fraction", f">= {fraction:g}", met))


def paired_order(pair: int) -> tuple[str, str]:
    """Which client runs first in pair ``pair``: the worker, then the bare script, in turn."""
    return ("worker", "bare") if pair % 2 == 0 else ("bare", "worker")


def add_paired_ratio(
    sc: Scenario, name: str, worker: Sequence[float], bare: Sequence[float], goal: float
) -> None:
    """The median of the pairs' ratios worker ÷ bare, goal at most ``goal``."""
    ratios = [w / b for w, b in zip(worker, bare, strict=True)]
    ratio = median(ratios)
    figure = Figure(round(ratio, 3), "x", f"<= {goal:g}", ratio <= goal)
    figure.runs = [round(r, 3) for r in ratios]
    figure.note = f"median of {len(ratios)} paired runs (worker ÷ bare script)"
    sc.add(name, figure)
