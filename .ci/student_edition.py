"""Build the student edition: every lesson as a notebook with the exercise solutions removed.

Usage: python .ci/student_edition.py [--out _build/student] lessons/NN_name.md ...

The notebooks are generated from the same MyST sources as the book (through
jupytext), never kept by hand.  Removed:

- every ``{dropdown}`` or ``{admonition}`` directive whose title starts with
  "Solution", and every ``{solution}`` directive, in colon (``:::``) or backtick
  fences, with everything nested inside it;
- the source of every code cell tagged ``solution`` (replaced by a stub comment).

The notebooks carry no outputs and no jupytext pairing metadata.  After writing,
the script checks that no line of a removed solution survives anywhere in the
student notebook, and exits non-zero if one does.

Output, under ``--out``:

- ``cnn-course-student/``: ``lessons/*.ipynb``, ``lessonlib/`` (the companion
  package), ``pyproject.toml``, ``constraints.txt``, ``LICENSE`` and a README;
- ``cnn-course-student.zip``: the same folder zipped, linked from the book;
- ``code-changed.txt``: the student notebooks whose code differs from their
  lesson's (a cell tagged ``solution`` was stubbed).  The others run exactly the
  code that ``make nbval`` already ran.
"""

from __future__ import annotations

import argparse
import re
import shutil
import sys
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

NAME = "cnn-course-student"
SOLUTION_TAG = "solution"
STUB = "# Your solution here.\n"
OPEN = re.compile(
    r"^(?P<indent>[ \t]*)(?P<fence>:{3,}|`{3,})\{(?P<name>[\w:-]+)\}[ \t]*(?P<arg>.*)$"
)
MIN_LEAK_CHARS = 12
PACKAGE_FILES = ("pyproject.toml", "constraints.txt", "LICENSE")
README = """\
# Convolutional Neural Networks, Tested: student edition

These are the course's lessons as Jupyter notebooks with the exercise solutions
removed. They were generated from the course sources; the book has the full
lessons, solutions included.

## Running the notebooks

You need Python 3.10 or newer. In this folder:

```bash
python -m venv .venv
.venv/bin/pip install -c constraints.txt -e . jupyterlab
.venv/bin/jupyter lab lessons/
```

The text cells use MyST Markdown (cross-references, dropdowns, numbers computed
by the code). Add `jupyterlab-myst` to the install line to render them in
JupyterLab; without it they show as plain Markdown.

Without a GPU every lesson runs in the *quick* profile: offline, in about a
minute on a laptop CPU. Set `LESSONLIB_PROFILE=full` on a machine with a GPU and
a network connection for the original datasets and model sizes.

## Licences

Code (lessonlib and the code cells) is under the MIT licence (see LICENSE).
Text and figures are under CC BY 4.0 (https://creativecommons.org/licenses/by/4.0/).
"""


@dataclass
class Lesson:
    """One student notebook and what was taken out of it."""

    source: Path
    notebook: object
    removed: list[str] = field(default_factory=list)
    code_changed: bool = False


def _closes(line: str, fence: str) -> bool:
    stripped = line.strip()
    return len(stripped) >= len(fence) and set(stripped) == {fence[0]}


def is_solution(name: str, arg: str) -> bool:
    """Return True for a directive that holds an exercise solution.

    >>> is_solution("dropdown", "Solution"), is_solution("admonition", "Solution to 2")
    (True, True)
    >>> is_solution("solution", "ex-1"), is_solution("dropdown", "Hint")
    (True, False)
    """
    title = arg.strip().lower()
    if name == "solution":
        return True
    return name in {"dropdown", "admonition"} and title.startswith("solution")


def strip_solutions(text: str) -> tuple[str, list[str]]:
    """Remove solution directives from MyST Markdown.

    Parameters
    ----------
    text : str
        The Markdown of one cell.

    Returns
    -------
    str, list of str
        The text without solutions, and the removed blocks.

    Raises
    ------
    ValueError
        If a solution directive is never closed.

    Examples
    --------
    >>> kept, removed = strip_solutions("Q?\\n\\n:::{dropdown} Solution\\n42\\n:::\\nnext")
    >>> kept, removed
    ('Q?\\n\\nnext', [':::{dropdown} Solution\\n42\\n:::'])
    """
    lines = text.split("\n")
    kept: list[str] = []
    removed: list[str] = []
    i = 0
    while i < len(lines):
        match = OPEN.match(lines[i])
        if match and is_solution(match["name"], match["arg"]):
            fence = match["fence"]
            end = i + 1
            while end < len(lines) and not _closes(lines[end], fence):
                end += 1
            if end == len(lines):
                raise ValueError(f"solution directive opened by {lines[i].strip()!r} never closes")
            removed.append("\n".join(lines[i : end + 1]))
            i = end + 1
            continue
        kept.append(lines[i])
        i += 1
    return "\n".join(kept), removed


def _significant(block: str) -> list[str]:
    lines = []
    for line in block.split("\n"):
        stripped = line.strip()
        if len(stripped) < MIN_LEAK_CHARS or OPEN.match(line) or stripped[0] in ":`":
            continue
        lines.append(stripped)
    return lines


def leaks(notebook, removed: list[str], source_text: str) -> list[str]:
    """Return the lines of removed solutions that still appear in ``notebook``.

    A solution line may legitimately repeat a line of the lesson itself (a solution
    that quotes the lesson's code, say).  So a line leaks when the notebook holds
    more copies of it than ``source_text`` (the whole lesson source) holds outside
    the removed blocks.
    """
    text = "\n".join(cell.source for cell in notebook.cells)
    all_removed = "\n".join(removed)
    found = []
    for line in dict.fromkeys(line for block in removed for line in _significant(block)):
        allowed = source_text.count(line) - all_removed.count(line)
        if text.count(line) > max(allowed, 0):
            found.append(line)
    for cell in notebook.cells:
        if cell.cell_type == "markdown":
            if strip_solutions(cell.source)[1]:
                found.append(f"a solution directive in: {cell.source[:60]!r}")
        elif SOLUTION_TAG in cell.metadata.get("tags", []) and cell.source != STUB:
            found.append(f"a solution code cell: {cell.source[:60]!r}")
    return found


def student_notebook(md_path: Path) -> Lesson:
    """Read a lesson's MyST source and return its student notebook."""
    import jupytext
    import nbformat

    notebook = jupytext.read(md_path)
    lesson = Lesson(source=md_path, notebook=notebook)
    for cell in notebook.cells:
        if cell.cell_type == "markdown":
            cell.source, removed = strip_solutions(cell.source)
            lesson.removed += removed
        elif cell.cell_type == "code":
            cell.outputs, cell.execution_count = [], None
            if SOLUTION_TAG in cell.metadata.get("tags", []):
                lesson.removed.append(cell.source)
                cell.source = STUB
                lesson.code_changed = True
    notebook.metadata.pop("jupytext", None)
    notebook.metadata.pop("widgets", None)
    title = md_path.stem.replace("_", " ")
    note = nbformat.v4.new_markdown_cell(
        f"*Student edition of `{md_path.name}` ({title}): the exercise solutions are "
        "removed. The book has the full lesson.*"
    )
    note.metadata["tags"] = ["student-edition"]
    notebook.cells.insert(0, note)
    return lesson


def write_edition(lessons: list[Lesson], out: Path, repo: Path) -> Path:
    """Write the student folder and its zip under ``out``; return the zip's path."""
    import nbformat

    folder = out / NAME
    if folder.exists():
        shutil.rmtree(folder)
    (folder / "lessons").mkdir(parents=True)
    for lesson in lessons:
        nbformat.write(lesson.notebook, folder / "lessons" / f"{lesson.source.stem}.ipynb")
    package = folder / "lessonlib"
    package.mkdir()
    for module in sorted((repo / "lessonlib").glob("*.py")):
        shutil.copy2(module, package / module.name)
    for name in PACKAGE_FILES:
        if (repo / name).is_file():
            shutil.copy2(repo / name, folder / name)
    (folder / "README.md").write_text(README)
    # Notebooks whose code differs from the lesson's: `make student STUDENT_EXEC=changed`
    # executes only these (the others run the very code `make nbval` already ran).
    changed = [
        (folder / "lessons" / f"{lesson.source.stem}.ipynb").as_posix()
        for lesson in lessons
        if lesson.code_changed
    ]
    (out / "code-changed.txt").write_text("".join(f"{path}\n" for path in changed))
    archive = out / f"{NAME}.zip"
    tmp = archive.with_suffix(".zip.tmp")
    with zipfile.ZipFile(tmp, "w", zipfile.ZIP_DEFLATED) as zf:
        for path in sorted(folder.rglob("*")):
            if path.is_file() and "__pycache__" not in path.parts:
                zf.write(path, path.relative_to(out).as_posix())
    tmp.replace(archive)
    return archive


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("lessons", nargs="+", type=Path)
    parser.add_argument("--out", type=Path, default=Path("_build/student"))
    parser.add_argument("--repo", type=Path, default=Path("."))
    args = parser.parse_args(argv)
    lessons, bad = [], 0
    for md_path in args.lessons:
        lesson = student_notebook(md_path)
        leaked = leaks(lesson.notebook, lesson.removed, md_path.read_text())
        status = "ok" if not leaked else "SOLUTION TEXT SURVIVES"
        code = ", code changed" if lesson.code_changed else ""
        print(
            f"student edition: {md_path.name}: {len(lesson.removed)} solution(s) removed"
            f"{code}, {status}"
        )
        for line in leaked:
            print(f"  leaked: {line}")
        bad += bool(leaked)
        lessons.append(lesson)
    if bad:
        return 1
    archive = write_edition(lessons, args.out, args.repo)
    print(f"student edition: {len(lessons)} notebook(s) in {args.out / NAME}, zip {archive}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
