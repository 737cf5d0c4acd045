"""The build tools in .ci/ that have logic of their own, tested offline without a browser."""

from __future__ import annotations

import importlib.util
import io
import sys
import tarfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _load(name: str):
    spec = importlib.util.spec_from_file_location(f"ci_{name}", ROOT / ".ci" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


browser = _load("browser_test")
vendor = _load("vendor_mathjax")
large = _load("check_large_files")


# ----------------------------------------------------------------------------- browser test


def test_toc_lessons_reads_nested_parts(tmp_path):
    toc = tmp_path / "_toc.yml"
    toc.write_text(
        "root: book/intro\nparts:\n  - chapters:\n      - file: book/setup\n"
        "  - chapters:\n      - file: lessons/01_a\n      - file: lessons/02_b.md\n"
        "        sections:\n          - file: lessons/03_c\n"
    )
    assert browser.toc_lessons(toc) == ["lessons/01_a", "lessons/02_b", "lessons/03_c"]


def test_book_pages_skip_assets(tmp_path):
    for rel in ("index.html", "lessons/02_x.html", "_static/a.html", "mathjax/b.html"):
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_text("<html></html>")
    assert browser.book_pages(tmp_path) == ["index.html", "lessons/02_x.html"]


def test_launch_links():
    good = [
        "https://colab.research.google.com/github/o/r/blob/main/lessons/02_x.ipynb",
        "https://mybinder.org/v2/gh/o/r/main?urlpath=lab/tree/lessons/02_x.ipynb",
    ]
    assert browser.check_launch_links("02_x", good) == []
    problems = browser.check_launch_links("02_x", [good[0].replace(".ipynb", ".md")])
    assert problems[0].startswith("Colab link does not open lessons/02_x.ipynb")
    assert problems[1] == "no Binder launch link"


def test_local_target(tmp_path):
    base = "http://127.0.0.1:8000/"
    assert browser.local_target(tmp_path, base, "https://example.org/x") is None
    assert browser.local_target(tmp_path, base, base + "a%20b.html") == tmp_path / "a b.html"
    assert browser.local_target(tmp_path, base, base + "dir/") == tmp_path / "dir" / "index.html"


@pytest.mark.parametrize(("ci", "status"), [("", 0), ("true", 1), ("1", 1), ("false", 0)])
def test_missing_browser_skips_loudly_except_on_ci(monkeypatch, capsys, ci, status):
    monkeypatch.setenv("CI", ci)
    assert browser.skip_or_fail("No browser here.") == status
    out = capsys.readouterr().out
    assert "#####" in out and "No browser here." in out
    assert ("FAILED" in out) == bool(status) and ("SKIPPED" in out) != bool(status)


def test_find_browser_honours_the_environment(monkeypatch, tmp_path):
    fake = tmp_path / "chrome"
    fake.write_text("")
    monkeypatch.setenv("LESSONLIB_BROWSER", str(fake))
    assert browser.find_browser() == str(fake)
    monkeypatch.setenv("LESSONLIB_BROWSER", str(tmp_path / "missing"))
    assert browser.find_browser() is None
    monkeypatch.delenv("LESSONLIB_BROWSER")
    monkeypatch.setenv("PATH", str(tmp_path))
    assert browser.find_browser() is None


def test_main_needs_a_built_book(tmp_path, capsys):
    assert browser.main(["--html", str(tmp_path)]) == 1
    assert "run `make html` first" in capsys.readouterr().out


def test_static_serving_from_a_thread(tmp_path):
    import urllib.request

    (tmp_path / "index.html").write_text("<p>hello</p>")
    server, base = browser.serve(tmp_path)
    try:
        assert base.startswith("http://127.0.0.1:")
        with urllib.request.urlopen(base + "index.html", timeout=5) as response:
            assert response.read() == b"<p>hello</p>"
    finally:
        server.shutdown()
        server.server_close()


def test_results_table():
    ok = browser.PageResult(path="book/intro.html", lesson=False, images=1)
    bad = browser.PageResult(path="lessons/02_x.html", lesson=True, figures=0)
    bad.problems.append("lesson shows no figure")
    bad.external.append("https://cdn.example/x.js")
    assert ok.ok and not bad.ok
    text = browser.table([ok, bad])
    assert "lessons/02_x.html" in text and "FAIL" in text
    assert "outside request (blocked): https://cdn.example/x.js" in text


@pytest.mark.parametrize(
    ("text", "hit"),
    [
        ("Traceback (most recent call last):\n  File", True),
        ("accuracy {glue:text}`acc`", True),
        ("accuracy np.float64(0.64)", True),
        ("accuracy 97.0%", False),
    ],
)
def test_error_text_patterns(text, hit):
    patterns = (browser.TRACEBACK, browser.UNFILLED_GLUE, browser.NUMPY_REPR)
    assert any(pattern.search(text) for pattern in patterns) is hit


def test_tqdm_text_bars_are_recognised():
    assert browser.TQDM_TEXT.search(" 40%|████      | 2/5 [00:01<00:02, 1.9it/s]")
    assert not browser.TQDM_TEXT.search("PyTorch: 5/5 done in 17.2 s [loss=0.0252]")


# ----------------------------------------------------------------------------- MathJax


def test_wanted_keeps_what_the_book_loads():
    assert vendor.wanted("package/es5/tex-mml-chtml.js") == "tex-mml-chtml.js"
    assert vendor.wanted("package/es5/input/tex/extensions/cancel.js") == (
        "input/tex/extensions/cancel.js"
    )
    for dropped in ("package/es5/latest.js", "package/es5/tex-svg.js", "package/ts/a.ts"):
        assert vendor.wanted(dropped) is None


def _fake_tarball(path: Path) -> Path:
    with tarfile.open(path, "w:gz") as tar:
        for name, data in (
            ("package/es5/tex-mml-chtml.js", b"// mathjax"),
            ("package/es5/latest.js", b"// cdn"),
            ("package/LICENSE", b"Apache-2.0"),
        ):
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return path


def test_unpack_checks_the_pinned_integrity(tmp_path, monkeypatch):
    tarball = _fake_tarball(tmp_path / "mathjax.tgz")
    with pytest.raises(SystemExit, match="fails its checksum"):
        vendor.unpack(tarball, tmp_path / "out")
    monkeypatch.setattr(vendor, "INTEGRITY", vendor.integrity_of(tarball))
    assert vendor.unpack(tarball, tmp_path / "out") == 2
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == [
        ".version",
        "LICENSE",
        "tex-mml-chtml.js",
    ]


def test_vendor_is_a_no_op_when_present(tmp_path, capsys):
    dest = tmp_path / "mathjax"
    dest.mkdir()
    (dest / ".version").write_text(vendor.VERSION + "\n")
    assert vendor.main(["--dest", str(dest)]) == 0
    assert "already in" in capsys.readouterr().out


# ----------------------------------------------------------------------------- large files


def test_large_file_guard(tmp_path, capsys):
    small, big = tmp_path / "small.txt", tmp_path / "big.bin"
    small.write_bytes(b"x" * 10)
    big.write_bytes(b"x" * 3 * 1024)
    assert large.main([str(small), str(big), str(tmp_path / "gone"), "--max-kb", "2"]) == 1
    assert "big.bin is 3 kB (limit 2 kB)" in capsys.readouterr().out
    assert large.main([str(small), "--max-kb", "2"]) == 0
