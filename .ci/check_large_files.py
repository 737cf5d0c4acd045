"""Large-file guard: fail if any given file is bigger than the limit.

Usage: python .ci/check_large_files.py [--max-kb 2048] FILE ...

`make meta` runs it over every tracked file; the pre-commit hook over the staged
ones.  The repository stays small: datasets and weights live in the lessonlib
cache, MathJax is fetched at build time, and a lesson notebook with its reference
outputs should stay well under 2 MB (figures at about 100 dpi).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

DEFAULT_MAX_KB = 2048


def too_large(paths: list[str], max_kb: int) -> list[tuple[str, int]]:
    """Return ``(path, size in kB)`` for every existing file over ``max_kb``."""
    found = []
    for name in paths:
        path = Path(name)
        if path.is_file():
            size_kb = path.stat().st_size // 1024
            if size_kb > max_kb:
                found.append((name, size_kb))
    return found


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("files", nargs="*")
    parser.add_argument("--max-kb", type=int, default=DEFAULT_MAX_KB)
    args = parser.parse_args(argv)
    found = too_large(args.files, args.max_kb)
    for name, size_kb in found:
        print(f"large-file guard: {name} is {size_kb} kB (limit {args.max_kb} kB)")
    if not found:
        print(f"large-file guard: {len(args.files)} file(s), none over {args.max_kb} kB")
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main())
