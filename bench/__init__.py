"""Benchmarks of devin-terminate against the built-in simulator: ``python -m bench``.

One module per scenario (``rate``, ``adaptive``, ``latency``, ``cost``, ``memory``,
``startup``), each with ``run(scenario)``; ``harness`` holds what they share, ``report``
writes ``results.json`` and ``REPORT.md``, ``baselines`` the comparison scripts.
"""
