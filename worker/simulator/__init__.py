"""A faithful Devin API v3 simulator (aiohttp) for the demo, the tests and the benchmarks.

    async with running_simulator(SimulatorConfig(sessions=50, rate_limit=100)) as sim:
        ...  # talk to sim.base_url with sim.config.token; read sim.stats

The configuration and population parts import no aiohttp; the server parts are loaded
on first use, so importing this package (or the ``simulate`` command) stays cheap.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from worker._lazy import lazy_names

from .config import SimulatorConfig
from .population import make_population, terminable_ids, write_ids_csv
from .stats import SimulatorStats

if TYPE_CHECKING:
    from .app import make_app
    from .server import RunningSimulator, running_simulator, serve

_LAZY = {
    "make_app": ".app",
    "RunningSimulator": ".server",
    "running_simulator": ".server",
    "serve": ".server",
}

__all__ = [
    "RunningSimulator",
    "SimulatorConfig",
    "SimulatorStats",
    "make_app",
    "make_population",
    "running_simulator",
    "serve",
    "terminable_ids",
    "write_ids_csv",
]


__getattr__ = lazy_names(__name__, _LAZY)
