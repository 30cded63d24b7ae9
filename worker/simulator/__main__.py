"""``python -m worker.simulator``: serve the simulator (the flags of ``simulate``)."""

from __future__ import annotations

import argparse
import sys

from .command import configure_parser, main

if __name__ == "__main__":
    parser = argparse.ArgumentParser(
        prog="python -m worker.simulator", description="Serve the Devin API v3 simulator."
    )
    configure_parser(parser)
    sys.exit(main(parser.parse_args()))
