"""``enroll --resume`` over a large results file: peak RSS and time, two index designs compared.

    python benchmarks/bench_resume.py [--identities 1000000] [--dir DIR]

Writes a journal as ``enroll`` does (a header, then per identity a ``sending`` line and a
``created`` line with a JWT-sized token, valid for hours), and an INPUT of the same identities.
Then, each in a fresh process so that the peak RSS is its own:

1. ``dict``: the index enroll uses (``cli._resume.read_index``: one small int per identity);
2. ``sqlite3``: the same decisions kept in an on-disk SQLite table instead (the alternative);
3. ``enroll --resume``: the whole command, which reads the journal, skips every identity and
   sends nothing (its client points at a closed port).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

_DICT = """
import datetime as dt, resource, sys, time
from verify_access_tokens.cli.enroll._resume import read_index
started = time.perf_counter()
with open(sys.argv[1], "rb") as stream:
    index = read_index(stream, now=dt.datetime.now(dt.UTC), keep_expired=False,
                       retry_failed_all=False)
print(len(index.states), time.perf_counter() - started,
      resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)
"""

_SQLITE = """
import json, os, resource, sqlite3, sys, time
started = time.perf_counter()
db = sqlite3.connect(sys.argv[1] + ".index.sqlite")
db.execute("PRAGMA journal_mode=OFF")
db.execute("PRAGMA synchronous=OFF")
db.execute("CREATE TABLE state (identity TEXT PRIMARY KEY, state INTEGER) WITHOUT ROWID")
batch = []
with open(sys.argv[1], "rb") as stream:
    for line in stream:
        record = json.loads(line)
        identity = record.get("identity")
        if identity is None:
            continue
        batch.append((identity, 0 if record["status"] == "created" else 2))
        if len(batch) == 10000:
            db.executemany("INSERT OR REPLACE INTO state VALUES (?, ?)", batch)
            batch.clear()
db.executemany("INSERT OR REPLACE INTO state VALUES (?, ?)", batch)
db.commit()
count = db.execute("SELECT count(*) FROM state").fetchone()[0]
db.close()
os.remove(sys.argv[1] + ".index.sqlite")
print(count, time.perf_counter() - started, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)
"""

_ENROLL = """
import resource, sys, time
from verify_access_tokens.cli._main import main
started = time.perf_counter()
code = main(sys.argv[1:])
print(code, time.perf_counter() - started, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)
"""

SERVICE = "VA" + "0" * 32


def write_files(directory: Path, n: int) -> tuple[Path, Path]:
    journal, source = directory / "results.jsonl", directory / "ids.txt"
    token = "eyJ" + "x" * 600  # a JWT's size
    with journal.open("w") as out, source.open("w") as ids:
        out.write(json.dumps({"record": "header", "service_sid": SERVICE}) + "\n")
        for i in range(n):
            identity = f"user-{i:012d}"
            ids.write(identity + "\n")
            out.write(json.dumps({"identity": identity, "status": "sending"}) + "\n")
            out.write(json.dumps({
                "identity": identity, "status": "created", "sid": "YK" + "0" * 32,
                "token": token, "ttl": 300, "date_created": "2099-01-01T00:00:00Z",
                "expires_at": "2099-01-01T00:05:00Z", "attempts": 1,
            }) + "\n")  # fmt: skip
    os.chmod(journal, 0o600)
    return journal, source


def measure(program: str, *argv: str) -> tuple[str, float, float]:
    env = {
        **os.environ,
        "TWILIO_ACCOUNT_SID": "AC" + "0" * 32,
        "TWILIO_AUTH_TOKEN": "0" * 32,
    }
    done = subprocess.run([sys.executable, "-c", program, *argv], capture_output=True,
                          text=True, env=env, check=True)  # fmt: skip
    first, seconds, rss_kib = done.stdout.split()
    return first, float(seconds), int(rss_kib) / 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--identities", type=int, default=1_000_000)
    parser.add_argument("--dir", help="where to write the files (default: a temporary one)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(dir=args.dir) as tmp:
        started = time.perf_counter()
        journal, source = write_files(Path(tmp), args.identities)
        size = journal.stat().st_size / 2**20
        print(f"journal: {args.identities} identities, {size:.0f} MiB "
              f"(written in {time.perf_counter() - started:.1f}s)")  # fmt: skip
        for name, program, argv in [
            ("index: dict", _DICT, [str(journal)]),
            ("index: sqlite3", _SQLITE, [str(journal)]),
            ("enroll --resume", _ENROLL, ["enroll", SERVICE, str(source), "--out", str(journal),
                                          "--resume", "--quiet",
                                          "--base-url", "http://127.0.0.1:9"]),
        ]:  # fmt: skip
            first, seconds, peak = measure(program, *argv)
            print(f"{name:<16} {seconds:6.1f}s  peak RSS {peak:7.0f} MiB  ({first})")


if __name__ == "__main__":
    main()
