"""The GitHub workflows and the pre-commit configuration, checked offline.

`make meta` validates the workflows against GitHub's schema; these tests check
what the schema cannot: the GPU matrix lists exactly the lessons in _toc.yml, and
each lesson job caches, pre-fetches, executes and keeps its notebook.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
WORKFLOWS = ROOT / ".github" / "workflows"


def load(path: Path) -> dict:
    return yaml.safe_load(path.read_text())


def toc_lessons() -> list[str]:
    """Lesson stems in _toc.yml, in reading order."""
    found: list[str] = []

    def walk(node: object) -> None:
        if isinstance(node, dict):
            entry = node.get("file")
            if isinstance(entry, str) and entry.startswith("lessons/"):
                found.append(Path(entry).name.removesuffix(".md").removesuffix(".ipynb"))
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for item in node:
                walk(item)

    walk(load(ROOT / "_toc.yml"))
    return found


@pytest.fixture(scope="module")
def full() -> dict:
    return load(WORKFLOWS / "full-profile.yml")


def steps_text(job: dict) -> str:
    return "\n".join(str(step.get("run", "")) + str(step.get("uses", "")) for step in job["steps"])


def test_matrix_lists_exactly_the_lessons_in_the_toc(full):
    matrix = full["jobs"]["lesson"]["strategy"]["matrix"]["lesson"]
    lessons = toc_lessons()
    assert lessons, "_toc.yml lists no lesson"
    assert len(set(matrix)) == len(matrix), "a lesson appears twice in the matrix"
    assert matrix == lessons, (
        "the full-profile matrix must list the lessons of _toc.yml, in order; set it to:\n"
        + "\n".join(f"          - {stem}" for stem in lessons)
    )
    for stem in matrix:
        assert (ROOT / "lessons" / f"{stem}.md").is_file(), stem


def test_lesson_jobs_run_the_full_profile_on_a_gpu_runner(full):
    job = full["jobs"]["lesson"]
    assert set(job["runs-on"]) == {"self-hosted", "gpu"}
    assert job["env"]["LESSONLIB_PROFILE"] == "full"
    assert job["strategy"]["fail-fast"] is False
    text = steps_text(job)
    cache = [s for s in job["steps"] if str(s.get("uses", "")).startswith("actions/cache@")]
    assert cache and cache[0]["with"]["path"] in full["env"]["LESSONLIB_CACHE"]
    assert "make prefetch" in text and "--slow" in text
    assert "NBVAL_MODE=--nbval-lax" in text and "PROFILE=full" in text
    assert "make execute" in text
    upload = [
        s for s in job["steps"] if str(s.get("uses", "")).startswith("actions/upload-artifact")
    ]
    assert upload and "matrix.lesson" in upload[0]["with"]["path"]
    order = [
        text.index(s)
        for s in (
            "actions/cache@",
            "make prefetch",
            "make nbval",
            "make execute",
            "upload-artifact",
        )
    ]
    assert order == sorted(order), "cache, pre-fetch, nbval, execute, upload: in that order"


def test_book_job_builds_from_executed_notebooks_and_deploys(full):
    triggers = full.get("on", full.get(True))  # PyYAML reads a bare `on` as True
    assert "schedule" in triggers and "workflow_dispatch" in triggers
    book = full["jobs"]["book"]
    assert book["needs"] == "lesson"
    text = steps_text(book)
    assert "actions/download-artifact" in text and "make html" in text
    assert text.index("download-artifact") < text.index("make html")
    assert "actions/upload-pages-artifact" in text
    deploy = full["jobs"]["deploy"]
    assert deploy["needs"] == "book"
    assert deploy["permissions"] == {"pages": "write", "id-token": "write"}
    assert "actions/deploy-pages" in steps_text(deploy)


def test_ci_workflow_runs_the_ci_script():
    ci = load(WORKFLOWS / "ci.yml")
    assert "bash .ci/run" in steps_text(ci["jobs"]["test"])


def test_precommit_uses_only_local_hooks():
    config = load(ROOT / ".pre-commit-config.yaml")
    assert {repo["repo"] for repo in config["repos"]} == {"local"}
    ids = {hook["id"] for repo in config["repos"] for hook in repo["hooks"]}
    assert {"ruff", "ruff-format", "jupytext-pairs", "workflow-schema", "large-files"} <= ids
