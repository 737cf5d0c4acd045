"""Time every lesson under nbval and write the timing table, book/timings.md.

Usage: python .ci/time_lessons.py lessons/*.ipynb [--ci-seconds N]

Each lesson runs alone, as `make nbval` runs it, and its wall time is recorded
with the date, the machine's core count and the CPU model.  ``--ci-seconds``
adds the measured wall time of a whole `.ci/run` on a fresh clone.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

NBVAL = [
    sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-o", "addopts=",
    "-o", "filterwarnings=", "--nbval", "--nbval-current-env", "--nbval-cell-timeout=600",
    "--nbval-sanitize-with", "lessons/sanitize.cfg",
]  # fmt: skip


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def time_lesson(notebook: str) -> tuple[float, bool]:
    start = time.perf_counter()
    result = subprocess.run([*NBVAL, notebook], capture_output=True, text=True)
    return time.perf_counter() - start, result.returncode == 0


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("notebooks", nargs="*")
    parser.add_argument("--ci-seconds", type=float, default=None)
    parser.add_argument("--from-tsv", default=None, help="per-lesson times written by make nbval")
    args = parser.parse_args()
    rows = []
    if args.from_tsv:
        for line in Path(args.from_tsv).read_text().splitlines():
            nb, seconds, status = line.split("\t")
            rows.append((Path(nb).stem, float(seconds), status == "passed"))
    for nb in args.notebooks:
        seconds, ok = time_lesson(nb)
        print(f"{nb}: {seconds:.1f} s {'passed' if ok else 'FAILED'}", flush=True)
        rows.append((Path(nb).stem, seconds, ok))
    if not rows:
        parser.error("give notebooks to time, or --from-tsv")
    today = dt.date.today().isoformat()
    lines = [
        "# Timings",
        "",
        f"Measured on {today} on a machine with {os.cpu_count()} cores ({cpu_model()}),",
        "no GPU, quick profile, offline (`LESSONLIB_OFFLINE=1`). Each lesson ran in its own",
        "strict nbval process, exactly as `make test` runs it; the time includes kernel",
        "start-up and imports. Regenerate this page with `make timings`, or from the last",
        "`make nbval` run with `make timings-from-run`.",
        "",
        "| lesson | wall time under nbval | result |",
        "|---|---|---|",
    ]
    for stem, seconds, ok in rows:
        lines.append(f"| `{stem}` | {seconds:.0f} s | {'passed' if ok else 'failed'} |")
    if args.ci_seconds is not None:
        minutes = args.ci_seconds / 60
        lines.append(
            f"| whole `.ci/run` on a fresh clone (install, all checks, book) "
            f"| {minutes:.1f} min | passed |"
        )
    lines += [
        "",
        "Full-profile times depend on the GPU and on download speed; they are not",
        "measured here. Estimates are given in each lesson's *what runs where* box.",
        "",
    ]
    Path("book/timings.md").write_text("\n".join(lines))
    return 0 if all(ok for _, _, ok in rows) else 1


if __name__ == "__main__":
    raise SystemExit(main())
