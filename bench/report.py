"""The outputs: ``results.json`` (every figure with its goal), ``REPORT.md``, the README's ratios.

The previous ``results.json`` is kept as ``results.previous.json`` and each figure is shown
beside its previous value, so two runs can be compared at a glance.
"""

from __future__ import annotations

import json
import os
import platform
import re
import statistics
import subprocess
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench.harness import Scenario

_META_KEYS = ("date", "machine", "run", "notes")
_RATIOS = (
    ("cost", "cpu_ratio_worker_to_aiohttp", "worker CPU per session ÷ bare aiohttp loop"),
    ("cost", "throughput_ratio_worker_to_aiohttp", "worker throughput ÷ bare aiohttp loop"),
    ("cost", "throughput_ratio_worker_to_requests_threads", "worker ÷ requests + 16 threads"),
    ("cost", "throughput_ratio_worker_to_xargs_curl", "worker ÷ xargs -P 16 curl"),
    ("rate", "achieved_share_of_limit", "achieved ÷ limit, worker --rate R"),
    ("adaptive", "achieved_share_of_limit", "accepted ÷ limit, worker --rate 2R"),
    ("adaptive", "share_429", "429s ÷ requests, worker --rate 2R"),
    ("latency", "share_of_littles_law_bound", "achieved ÷ Little's-law bound"),
    ("latency", "bare_loop_share_of_bound", "bare aiohttp loop ÷ Little's-law bound"),
    ("latency", "share_of_bare_loop", "achieved ÷ bare aiohttp loop, 100 ms answers"),
    ("soak", "accepted_share_of_limit", "accepted ÷ limit, 20% faults, worker --rate 2R"),
    ("soak", "share_429", "429s ÷ requests, 20% faults, worker --rate 2R"),
    ("memory", "peak_rss_1000000_ids_skipped", "peak RSS (MiB), rerun of 1,000,000 settled ids"),
    ("cpu", "cpu_ratio_worker_to_bare", "CPU per session ÷ bare aiohttp script, start-up off"),
    ("first_request", "start_to_first_delete_ratio", "start to first DELETE ÷ bare script"),
    ("resume", "rerun_ratio_worker_to_bare", "rerun of 1,000,000 settled ids ÷ bare script"),
    ("resume", "rss_growth_bytes_per_id", "RSS growth per id, rerun 100,000 to 1,000,000 ids"),
    ("resume", "peak_rss_1000000_mib", "peak RSS (MiB), rerun of 1,000,000 ids, reference server"),
)
_START, _END = "<!-- ratios:start -->", "<!-- ratios:end -->"


def machine_info(*, quick: bool) -> dict[str, Any]:
    return {
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": {
            "platform": platform.platform(),
            "python": platform.python_version(),
            "cpu": _cpu_model(),
            "cpus": os.cpu_count(),
        },
        "run": {"quick": quick, "load_average_at_start": _load(), "commit": _commit()},
    }


def _cpu_model() -> str:
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return platform.processor()
    match = re.search(r"^model name\s*:\s*(.+)$", text, re.MULTILINE)
    return match.group(1).strip() if match else platform.processor()


def _load() -> list[float]:
    return [round(x, 2) for x in os.getloadavg()]


def _commit() -> str | None:
    try:
        head = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, check=True
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain"], capture_output=True, text=True, check=True
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return None
    return f"{head}{'+dirty' if dirty else ''}"


def write_outputs(
    out: Path, done: list[Scenario], meta: dict[str, Any], *, partial: bool
) -> list[Path]:
    """Write results.json and REPORT.md (and the README's ratios); return the paths."""
    path = out / "results.json"
    previous: dict[str, Any] = json.loads(path.read_text()) if path.exists() else {}
    run = meta.pop("run")
    run.update(
        total_seconds=meta.pop("total_seconds"),
        scenario_seconds=meta.pop("scenario_seconds", {}),
        scenario_load_at_start=meta.pop("scenario_load_at_start", {}),
        load_average_at_end=_load(),
    )
    if partial:  # the other scenarios keep the figures of the runs that made them
        run["only"] = [sc.name for sc in done]
        earlier = previous.get("run", {})
        run["others_from"] = earlier.get("others_from", earlier) if "only" in earlier else earlier
    data: dict[str, Any] = {k: v for k, v in previous.items() if partial and k not in _META_KEYS}
    data.update({"date": meta["date"], "machine": meta["machine"], "run": run})
    notes: dict[str, list[str]] = dict(previous.get("notes", {})) if partial else {}
    for sc in done:
        data[sc.name] = {name: fig.as_json() for name, fig in sc.figures.items()}
        notes[sc.name] = sc.notes
    data["notes"] = notes
    written = [path, out / "REPORT.md"]
    if previous:
        (out / "results.previous.json").write_text(json.dumps(previous, indent=2) + "\n")
        written.append(out / "results.previous.json")
    path.write_text(json.dumps(data, indent=2) + "\n")
    (out / "REPORT.md").write_text(render_report(data, previous))
    readme = out / "README.md"
    if readme.exists() and not run["quick"]:
        readme.write_text(_with_ratios(readme.read_text(), data))
        written.append(readme)
    return written


def _scenarios(data: dict[str, Any]) -> list[str]:
    return [k for k in data if k not in _META_KEYS]


def _shown(value: Any) -> str:
    if value is None:
        return "n/a"
    return f"{value:g}" if isinstance(value, int | float) else str(value)


def _verdict(met: bool | None) -> str:
    return {True: "met", False: "**NOT MET**", None: "–"}[met]


def _previous(previous: dict[str, Any], scenario: str, name: str) -> str:
    old = previous.get(scenario, {}).get(name, {}).get("value")
    return _shown(old) if old is not None else ""


def _scope(run: dict[str, Any]) -> str:
    kind = "quick" if run["quick"] else "full"
    only = run.get("only")
    if not only:
        return f"{kind} run"
    return f"{kind} run of {', '.join(only)} only; the other scenarios are from earlier runs"


def render_report(data: dict[str, Any], previous: dict[str, Any]) -> str:
    run, machine = data["run"], data["machine"]
    lines = [
        "# devin-terminate benchmarks",
        "",
        f"Generated by `make bench` ({_scope(run)}) on "
        f"{data['date']}, commit `{run.get('commit')}`, in {run['total_seconds']} s.",
        f"Machine: {machine['cpu']}, {machine['cpus']} CPUs, {machine['platform']}, "
        f"Python {machine['python']}. Load average at start {run['load_average_at_start']}, "
        f"at end {run['load_average_at_end']}.",
        "",
        "The simulator and the client under test each run in their own process, on loopback. "
        "Figures measured on a shared 2-core machine (other work running beside) are noisy: "
        "compare ratios and shares rather than absolute times. The `previous` column is the "
        "run before this one (`results.previous.json`).",
        "",
        "## Every figure beside its goal",
        "",
        "| scenario | figure | value | unit | goal | met | previous |",
        "|---|---|---|---|---|---|---|",
    ]
    for scenario in _scenarios(data):
        for name, fig in data[scenario].items():
            lines.append(
                f"| {scenario} | {name} | {_shown(fig['value'])} | {fig['unit']} | "
                f"{fig['goal'] or '–'} | {_verdict(fig['met'])} | "
                f"{_previous(previous, scenario, name)} |"
            )
    lines += ["", "## Goals not met", ""]
    unmet = [
        f"- **{s}.{n}**: {_shown(f['value'])} {f['unit']}, goal {f['goal']}: not met."
        for s in _scenarios(data)
        for n, f in data[s].items()
        if f["met"] is False
    ]
    lines += unmet or ["Every figure that has a goal met it in this run."]
    lines += _against_previous(data, previous)
    lines += _notes_and_plots(data)
    return "\n".join(lines) + "\n"


def _against_previous(data: dict[str, Any], previous: dict[str, Any]) -> list[str]:
    """Goal verdicts that changed since the previous run, and how far the figures moved."""
    if not previous:
        return []
    changed, moved = [], []
    for s in _scenarios(data):
        for n, f in data[s].items():
            old = previous.get(s, {}).get(n)
            if f["met"] is None or old is None or old.get("value") is None:
                continue
            if old["met"] != f["met"]:
                changed.append(f"{s}.{n} ({_verdict(old['met'])} → {_verdict(f['met'])})")
            if f["value"] is not None and old["value"]:
                moved.append(abs(f["value"] / old["value"] - 1))
    when = previous.get("date", "?")
    lines = ["", "## Against the previous run", "", f"Previous run: {when}."]
    lines.append(
        "Goal verdicts that changed: " + ", ".join(changed) + "."
        if changed
        else "Every goal verdict is the same as in the previous run."
    )
    if moved:
        lines.append(
            f"Figures with a goal moved by {statistics.median(moved):.1%} in the median, "
            f"{max(moved):.1%} at most (per figure in the `previous` column above)."
        )
    return lines


def _notes_and_plots(data: dict[str, Any]) -> list[str]:
    plots = {"rate": "rate.png", "adaptive": "adaptive.png", "cost": "cost.png"}
    plots["memory"] = "memory.png"
    lines = ["", "## Scenarios", ""]
    for scenario in _scenarios(data):
        lines += [f"### {scenario}", ""]
        load = data["run"].get("scenario_load_at_start", {}).get(scenario)
        took = data["run"].get("scenario_seconds", {}).get(scenario)
        if load is not None:
            lines.append(f"- took {took} s; 1-minute load average at its start: {load}")
        for note in data["notes"].get(scenario, []):
            text = note.replace("\n", "\n    ")
            lines.append(f"- {text}")
        for name, fig in data[scenario].items():
            if fig.get("runs"):
                lines.append(f"- {name}, every repetition: {', '.join(map(_shown, fig['runs']))}")
            if fig.get("note"):
                lines.append(f"- {name}: {fig['note']}")
        if scenario in plots:
            lines += ["", f"![{scenario}]({plots[scenario]})"]
        lines.append("")
    return lines


def _with_ratios(readme: str, data: dict[str, Any]) -> str:
    if _START not in readme or _END not in readme:
        return readme
    rows = ["| ratio | value | goal |", "|---|---|---|"]
    for scenario, name, label in _RATIOS:
        fig = data.get(scenario, {}).get(name)
        if fig is not None:
            goal = f"{fig['goal']} ({'met' if fig['met'] else 'not met'})" if fig["goal"] else "–"
            rows.append(f"| {label} | {_shown(fig['value'])} | {goal} |")
    block = "\n".join([_START, f"Latest {_scope(data['run'])}: {data['date']}.", "", *rows, _END])
    head, _, rest = readme.partition(_START)
    _, _, tail = rest.partition(_END)
    return head + block + tail
