"""One module per command: run, list, demo, simulate, report, enqueue, work."""
