"""Benchmark of lessonlib.counting.make_circles: images per second.

A plain script, not a pytest test.  Run it from the repository root::

    python tests/benchmarks/bench_counting.py [--n-images 1200] [--repeats 5]

The issue's target is at least 1,000 images/s at 128 px on a 2-core machine.
Timings are wall-clock and include drawing; other jobs on the machine make
them noisy, so the median and best of several repeats are printed.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

# (label, counts, image_size, radius)
CASES = [
    ("1-5 circles, 128 px, r=4", range(1, 6), 128, 4),
    ("45-50 circles, 128 px, r=4", range(45, 51), 128, 4),
    ("45-50 circles, 128 px, r=2..6", range(45, 51), 128, (2, 6)),
    ("1-5 circles, 64 px, r=4", range(1, 6), 64, 4),
    ("45-50 circles, 64 px, r=2", range(45, 51), 64, 2),
    ("1-5 circles, 96 px, r=4", range(1, 6), 96, 4),
    ("45-50 circles, 96 px, r=4", range(45, 51), 96, 4),
]


def images_per_second(counts, image_size, radius, *, n_images, repeats) -> list[float]:
    """Time ``repeats`` calls of make_circles and return images/s for each."""
    from lessonlib.counting import make_circles

    rates = []
    for seed in range(repeats):
        start = time.perf_counter()
        make_circles(n_images, counts=counts, image_size=image_size, radius=radius, seed=seed)
        rates.append(n_images / (time.perf_counter() - start))
    return rates


def main() -> None:
    """Print a table of images/s for each case."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n-images", type=int, default=1200)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()

    from lessonlib.counting import make_circles

    make_circles(10, seed=0)  # warm-up: imports and first allocations
    print(f"make_circles, {args.n_images} images per call, {os.cpu_count()} CPUs visible")
    print(f"{'case':34s} {'median img/s':>13s} {'best img/s':>11s}")
    for name, counts, size, radius in CASES:
        rates = images_per_second(
            counts, size, radius, n_images=args.n_images, repeats=args.repeats
        )
        print(f"{name:34s} {statistics.median(rates):13,.0f} {max(rates):11,.0f}")


if __name__ == "__main__":
    main()
