"""Strip run-specific metadata from executed lesson notebooks.

Removes per-cell execution timestamps and any saved widget state, so that a
re-execution only changes outputs, and the jupytext pair gate stays stable.
"""

from __future__ import annotations

import sys

import nbformat


def clean(path: str) -> None:
    nb = nbformat.read(path, as_version=4)
    nb.metadata.pop("widgets", None)
    for cell in nb.cells:
        cell.metadata.pop("execution", None)
    nbformat.write(nb, path)


if __name__ == "__main__":
    for notebook in sys.argv[1:]:
        clean(notebook)
