"""Crash-safety soak: SIGKILL a real local run at many random points, resume, compare.

The default test suite kills a run at three points (``tests/test_resume.py``); this
script uses the same helpers for ``--kills`` random kill points (default 20), each a
random number of journaled batches, and checks after the final resume that the
database rows and Parquet parts equal an uninterrupted run's. Prints one line per kill
and a verdict; exits 1 on any difference.

Usage::

    python bench/resume_soak.py [--kills 20] [--seed 0]
"""

from __future__ import annotations

import argparse
import random
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def main(argv: list[str] | None = None) -> int:
    from plateseg.map_settings import MapSettings
    from plateseg.runs.embedded import journal_path, run_local
    from tests.test_resume import (
        RESUME,
        RUN,
        START,
        db_rows,
        journaled_batches,
        kill_when,
        make_home,
        parquet_parts,
        spawn,
    )

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--kills", type=int, default=20)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    rng = random.Random(args.seed)
    batches = 12
    with tempfile.TemporaryDirectory() as tmp:
        baseline = make_home(Path(tmp) / "baseline")
        tunables = MapSettings(items_per_batch=1, max_concurrency=2)
        run_local("E", run_id=RUN, settings=baseline, tunables=tunables)
        killed_total = 0
        while killed_total < args.kills:
            home = make_home(Path(tmp) / f"killed-{killed_total}")
            journal = journal_path(RUN, home)
            code = START
            while killed_total < args.kills:
                done = max(0, journaled_batches(journal))
                if done >= batches - 1:
                    break
                point = rng.randint(done, batches - 1)
                seen = kill_when(spawn(code, home), home, point)
                killed_total += 1
                print(f"kill {killed_total}: after {seen} journaled batches")
                code = RESUME
            final = spawn(RESUME if code == RESUME else START, home)
            if final.wait(timeout=600) != 0:
                print("FAIL: the final resume did not succeed")
                return 1
            same = db_rows(home) == db_rows(baseline)
            same = same and parquet_parts(home) == parquet_parts(baseline)
            print(f"  run in {home.home.name}: {'identical' if same else 'DIFFERENT'} results")
            if not same:
                return 1
    print(f"OK: {args.kills} kill points, results identical to an uninterrupted run")
    return 0


if __name__ == "__main__":
    sys.exit(main())
