"""The student edition generator (.ci/student_edition.py) on a small fixture lesson."""

from __future__ import annotations

import importlib.util
import json
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _load(name: str):
    spec = importlib.util.spec_from_file_location(f"ci_{name}", ROOT / ".ci" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


student = _load("student_edition")

FIXTURE = """\
---
jupytext:
  formats: ipynb,md:myst
  text_representation:
    extension: .md
    format_name: myst
    format_version: 0.13
kernelspec:
  display_name: Python 3 (ipykernel)
  language: python
  name: python3
---

# Lesson 99: a fixture

Some prose that stays, with a hint that is not a solution.

```{code-cell} ipython3
answer = 6 * 7
print(answer)
```

## Exercises

1. What is six times seven, and why does it matter here?

   :::{dropdown} Solution
   The colon-fenced answer is SECRET-ANSWER-ONE, forty-two.
   :::

2. Write the loop that prints the squares of one to three.

   ::::{dropdown} Solution to exercise 2
   Nested content is removed with its parent, SECRET-ANSWER-TWO:

   ```python
   for k in range(1, 4):  # SECRET-ANSWER-CODE
       print(k * k)
   ```

   :::{note}
   Even a nested note, SECRET-ANSWER-NOTE, goes.
   :::
   ::::

3. Name one more thing.

   :::{dropdown} Hint
   A hint stays in the student edition.
   :::

````{admonition} Solution
:class: dropdown
A backtick-fenced admonition, SECRET-ANSWER-THREE, is removed too.
````

```{code-cell} ipython3
:tags: [solution]

squares = [k * k for k in range(1, 4)]  # SECRET-ANSWER-CELL
```

```{code-cell} ipython3
print("the student edition still runs")
```
"""


@pytest.fixture
def lesson_md(tmp_path):
    path = tmp_path / "99_fixture.md"
    path.write_text(FIXTURE)
    return path


def test_no_solution_text_survives(lesson_md):
    lesson = student.student_notebook(lesson_md)
    text = json.dumps([cell.source for cell in lesson.notebook.cells])
    assert "SECRET-ANSWER" not in text
    assert len(lesson.removed) == 4  # three directives and one tagged code cell
    assert student.leaks(lesson.notebook, lesson.removed, FIXTURE) == []
    for kept in (
        "Some prose that stays",
        "What is six times seven",
        "A hint stays",
        "answer = 6 * 7",
    ):
        assert kept in text, kept
    assert "still runs" in text


def test_student_notebook_is_clean(lesson_md):
    nb = student.student_notebook(lesson_md).notebook
    assert "jupytext" not in nb.metadata
    assert nb.metadata["kernelspec"]["name"] == "python3"
    assert "Student edition" in nb.cells[0].source
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert all(c.outputs == [] and c.execution_count is None for c in code)
    (solution,) = [c for c in code if "solution" in c.metadata.get("tags", [])]
    assert solution.source == student.STUB


def test_leaks_are_detected(lesson_md):
    lesson = student.student_notebook(lesson_md)
    lesson.notebook.cells[-1].source += "\nThe colon-fenced answer is SECRET-ANSWER-ONE, forty-two."
    assert student.leaks(lesson.notebook, lesson.removed, FIXTURE) == [
        "The colon-fenced answer is SECRET-ANSWER-ONE, forty-two."
    ]


QUOTING = (
    FIXTURE.split("## Exercises")[0]
    + """\
## Exercises

1. Change the cell that computes the answer.

   :::{dropdown} Solution
   Start from the lesson's own line:

   ```python
   answer = 6 * 7
   answer_plus_one = answer + 1  # SECRET-ANSWER-QUOTE
   ```
   :::
"""
)


def test_a_solution_may_quote_the_lesson(tmp_path):
    path = tmp_path / "99_quoting.md"
    path.write_text(QUOTING)
    lesson = student.student_notebook(path)
    assert "answer = 6 * 7" in lesson.notebook.cells[2].source  # the lesson keeps its code
    assert student.leaks(lesson.notebook, lesson.removed, QUOTING) == []
    lesson.notebook.cells[-1].source += "\nanswer = 6 * 7"  # now one copy too many
    assert student.leaks(lesson.notebook, lesson.removed, QUOTING) == ["answer = 6 * 7"]


def test_unclosed_solution_is_an_error():
    with pytest.raises(ValueError, match="never closes"):
        student.strip_solutions("Q\n:::{dropdown} Solution\nanswer without an end\n")


def test_main_writes_notebooks_and_zip(lesson_md, tmp_path, capsys):
    repo = tmp_path / "repo"
    (repo / "lessonlib").mkdir(parents=True)
    (repo / "lessonlib" / "__init__.py").write_text("")
    (repo / "LICENSE").write_text("MIT")
    out = tmp_path / "out"
    assert student.main([str(lesson_md), "--out", str(out), "--repo", str(repo)]) == 0
    assert "99_fixture.md: 4 solution(s) removed, code changed, ok" in capsys.readouterr().out
    names = zipfile.ZipFile(out / "cnn-course-student.zip").namelist()
    assert "cnn-course-student/lessons/99_fixture.ipynb" in names
    assert "cnn-course-student/lessonlib/__init__.py" in names
    assert "cnn-course-student/README.md" in names
    assert (out / "code-changed.txt").read_text().endswith("lessons/99_fixture.ipynb\n")
    with zipfile.ZipFile(out / "cnn-course-student.zip") as zf:
        assert b"SECRET-ANSWER" not in zf.read("cnn-course-student/lessons/99_fixture.ipynb")


def test_real_lessons_lose_their_solutions():
    for md_path in sorted((ROOT / "lessons").glob("[0-9]*.md")):
        lesson = student.student_notebook(md_path)
        leaked = student.leaks(lesson.notebook, lesson.removed, md_path.read_text())
        assert leaked == [], md_path.name
        sources = "\n".join(cell.source for cell in lesson.notebook.cells)
        assert "{dropdown} Solution" not in sources, md_path.name
