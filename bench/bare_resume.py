"""A bare resume script: read a result log into a set, then check every input id against it.

What someone would write in place of the worker's rerun, and no more: the ids whose record
in the log has a final outcome go into a Python ``set`` (``orjson`` a line, the parser the
worker has too), then the input's ids (a CSV with a header row) are checked against it and
the ones left to send are counted. It prints that count.
Run as ``python -m bench.bare_resume LOG IDS``.
"""

import sys

import orjson

FINAL = {"terminated", "archived", "already_terminated", "not_found"}

if __name__ == "__main__":
    settled = set()
    with open(sys.argv[1], "rb") as log:
        for line in log:
            record = orjson.loads(line)
            if record.get("event") == "session.result":
                if record.get("outcome") in FINAL:
                    settled.add(record["session_id"])
                else:
                    settled.discard(record["session_id"])
    with open(sys.argv[2]) as ids:
        next(ids)
        left = sum(1 for line in ids if line.strip() not in settled)
    print(left)
