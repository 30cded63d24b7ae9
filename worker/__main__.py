from worker.cli import entry

entry()
