"""Open every page of the built book in headless Chromium and check what a reader sees.

Usage: python .ci/browser_test.py [--html _build/html] [--toc _toc.yml]
                                  [--screenshots _build/screenshots]

The book in ``_build/html`` is served on 127.0.0.1 by ``http.server`` in a thread
and every ``.html`` page is opened with Python playwright driving a system Chromium
(Debian's ``chromium``; never ``playwright install``).  For each page:

- **images**: no broken image (``naturalWidth > 0``), and every lesson in
  ``_toc.yml`` shows at least one figure;
- **math**: where the page has math, the vendored MathJax rendered it;
- **no error text**: no Python traceback, no unfilled glue or raw numpy repr, no
  docutils error (a glue key that is missing altogether renders as nothing: the
  ``-W`` book build catches that);
- **static widgets**: every ``interactive_figure`` cell shows an image, no saved
  widget state, no text-mode tqdm bars;
- **clean loading**: no failed request, no request to any host but the local
  server (outside requests are blocked and reported), no JavaScript error;
- **links**: every local link resolves; on lesson pages the Colab and Binder
  launch links point at the lesson's ``.ipynb``.

A full-page screenshot of each lesson is saved under ``--screenshots``, with the
results table in ``report.txt`` beside them.  Exit status 0 when every page passes.

When no Chromium (or no playwright) can be found, the test is skipped with a loud
banner and exit status 0, except on CI (``CI`` set to a true value), where a
missing browser is a failure.  ``LESSONLIB_BROWSER=/path/to/chrome`` picks a
browser explicitly.
"""

from __future__ import annotations

import argparse
import functools
import http.server
import os
import re
import shutil
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import unquote, urljoin, urlsplit

import yaml

BROWSER_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
BROWSER_NAMES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
SKIP_DIRS = {"_static", "_sources", "_images", "_downloads", "mathjax"}
TRACEBACK = re.compile(r"Traceback \(most recent call last\)")
UNFILLED_GLUE = re.compile(r"\{glue(:[a-z]+)?\}|glue:(text|any|figure|math)")
# A glued numpy scalar that could not be formatted shows its repr in the prose.
NUMPY_REPR = re.compile(r"\bnp\.(float|int|uint|bool_)\w*\(")
TQDM_TEXT = re.compile(r"\d+%\|[^|\n]*\||\d+(\.\d+)?\s?it/s\]")
# pydata-sphinx-theme logs this once in a fresh browser profile (empty localStorage).
BENIGN_CONSOLE = ("Got invalid theme mode",)
WIDGET_MIME = (
    "application/vnd.jupyter.widget-state+json",
    "application/vnd.jupyter.widget-view+json",
)

PAGE_JS = """async () => {
  if (window.MathJax && MathJax.startup && MathJax.startup.promise) {
    try { await MathJax.startup.promise; } catch (e) {}
  }
  const imgs = Array.from(document.images);
  for (const img of imgs) { if (img.loading === "lazy") img.loading = "eager"; }
  await Promise.all(imgs.map(img => img.complete ? null : new Promise(done => {
    img.addEventListener("load", done); img.addEventListener("error", done);
    setTimeout(done, 10000);
  })));
  const body = document.body.cloneNode(true);
  body.querySelectorAll("pre, script, style, .highlight").forEach(e => e.remove());
  return {
    images: imgs.map(img => ({
      src: img.currentSrc || img.src,
      ok: img.complete && img.naturalWidth > 0,
      figure: !!img.closest(".cell_output, figure, .figure"),
    })),
    links: Array.from(document.querySelectorAll("a[href]")).map(a => a.href),
    mathSource: document.querySelectorAll("span.math, div.math").length,
    mathRendered: document.querySelectorAll("mjx-container").length,
    mathErrors: document.querySelectorAll("mjx-merror").length,
    tracebackNodes: document.querySelectorAll(".output.traceback, .output.error").length,
    problemNodes: document.querySelectorAll(".problematic, .system-message").length,
    prose: body.innerText,
    outputs: Array.from(document.querySelectorAll(".cell_output pre")).map(p => p.innerText),
    widgetDemos: Array.from(document.querySelectorAll("div.cell"))
      .filter(c => (c.querySelector(".cell_input") || {innerText: ""}).innerText
        .includes("interactive_figure("))
      .map(c => c.querySelectorAll(".cell_output img").length),
  };
}"""


@dataclass
class PageResult:
    """What one page showed."""

    path: str
    lesson: bool
    seconds: float = 0.0
    images: int = 0
    figures: int = 0
    broken_images: int = 0
    math: str = "-"
    widget_demos: str = "-"
    requests: int = 0
    external: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)
    js_errors: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not (self.problems or self.external or self.failed or self.js_errors)


def truthy(value: str | None) -> bool:
    return (value or "").strip().lower() in {"1", "true", "yes", "on"}


def find_browser() -> str | None:
    """Return the path of a Chromium-family browser, or None."""
    explicit = os.environ.get("LESSONLIB_BROWSER")
    if explicit:
        return explicit if Path(explicit).exists() else shutil.which(explicit)
    for name in BROWSER_NAMES:
        found = shutil.which(name)
        if found:
            return found
    return None


def skip_or_fail(reason: str) -> int:
    """Print a loud banner; fail on CI, skip elsewhere."""
    on_ci = truthy(os.environ.get("CI"))
    verdict = "FAILED (CI is set: the browser test must run)" if on_ci else "SKIPPED"
    lines = [
        f"BROWSER TEST {verdict}",
        reason,
        "Install Debian's chromium (apt-get install chromium) or set",
        "LESSONLIB_BROWSER=/path/to/chromium, then run `make browser`.",
    ]
    width = max(len(line) for line in lines) + 4
    bar = "#" * (width + 2)
    print("\n".join([bar, *(f"# {line:<{width - 2}} #" for line in lines), bar]), flush=True)
    return 1 if on_ci else 0


def toc_lessons(toc_path: Path) -> list[str]:
    """Return the ``lessons/...`` files listed in ``_toc.yml``, in order."""
    found: list[str] = []

    def walk(node: object) -> None:
        if isinstance(node, dict):
            entry = node.get("file")
            if isinstance(entry, str) and entry.startswith("lessons/"):
                found.append(Path(entry).with_suffix("").as_posix())
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for item in node:
                walk(item)

    walk(yaml.safe_load(toc_path.read_text()))
    return found


def book_pages(html: Path) -> list[str]:
    """Return every page of the book, relative to ``html``, sorted."""
    pages = []
    for page in html.rglob("*.html"):
        rel = page.relative_to(html)
        if rel.parts[0] in SKIP_DIRS:
            continue
        pages.append(rel.as_posix())
    return sorted(pages)


class QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:  # noqa: A002
        pass


def serve(html: Path) -> tuple[http.server.ThreadingHTTPServer, str]:
    """Serve ``html`` on 127.0.0.1 in a daemon thread; return the server and its base URL."""
    handler = functools.partial(QuietHandler, directory=str(html))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    host, port = server.server_address[:2]
    return server, f"http://{host}:{port}/"


def local_target(html: Path, base: str, url: str) -> Path | None:
    """Return the file a local link points at (None for outside links)."""
    if not url.startswith(base):
        return None
    path = unquote(urlsplit(url).path)
    target = html / path.lstrip("/")
    return target / "index.html" if path.endswith("/") else target


def check_launch_links(stem: str, links: list[str]) -> list[str]:
    """Return problems with a lesson's Colab and Binder links."""
    problems = []
    notebook = f"lessons/{stem}.ipynb"
    for label, host in (("Colab", "colab.research.google.com"), ("Binder", "mybinder.org")):
        hrefs = {link for link in links if urlsplit(link).hostname == host}
        if not hrefs:
            problems.append(f"no {label} launch link")
        for href in hrefs:
            if not href.endswith(notebook):
                problems.append(f"{label} link does not open {notebook}: {href}")
    return problems


def check_page(page, base: str, html: Path, rel: str, lesson_stems: set[str]) -> PageResult:
    """Load one page and collect what is wrong with it."""
    stem = Path(rel).stem
    result = PageResult(path=rel, lesson=rel.startswith("lessons/") and stem in lesson_stems)
    local = urlsplit(base).netloc
    events: dict[str, list[str]] = {"external": [], "failed": [], "js": [], "requests": []}

    def on_request(request) -> None:
        events["requests"].append(request.url)

    def on_failed(request) -> None:
        if urlsplit(request.url).netloc == local:
            events["failed"].append(f"{request.url} ({request.failure})")

    def on_response(response) -> None:
        if response.status >= 400:
            events["failed"].append(f"{response.url} (HTTP {response.status})")

    def on_console(message) -> None:
        text = message.text
        if message.type == "error" and "Failed to load resource" not in text:
            if any(benign in text for benign in BENIGN_CONSOLE):
                return
            events["js"].append(text)

    page.on("request", on_request)
    page.on("requestfailed", on_failed)
    page.on("response", on_response)
    page.on("pageerror", lambda err: events["js"].append(str(err)))
    page.on("console", on_console)

    def route(route_) -> None:
        url = route_.request.url
        if urlsplit(url).scheme in {"data", "blob"} or urlsplit(url).netloc == local:
            route_.continue_()
        else:
            events["external"].append(url)
            route_.abort("blockedbyclient")

    page.route("**/*", route)
    start = time.perf_counter()
    page.goto(urljoin(base, rel), wait_until="load", timeout=60_000)
    try:
        page.wait_for_load_state("networkidle", timeout=15_000)
    except Exception:  # noqa: BLE001 - a page that never idles is reported by its requests
        result.problems.append("network never went idle")
    info = page.evaluate(PAGE_JS)
    html_text = page.content()
    result.seconds = time.perf_counter() - start

    result.images = len(info["images"])
    result.figures = sum(1 for img in info["images"] if img["figure"] and img["ok"])
    broken = [img["src"] for img in info["images"] if not img["ok"]]
    result.broken_images = len(broken)
    result.problems += [f"broken image {src}" for src in broken]
    if result.lesson and result.figures == 0:
        result.problems.append("lesson shows no figure")
    if info["mathSource"]:
        result.math = f"{info['mathRendered']}/{info['mathSource']}"
        if info["mathRendered"] < info["mathSource"]:
            result.problems.append(
                f"math not rendered ({info['mathRendered']} of {info['mathSource']})"
            )
    if info["mathErrors"]:
        result.problems.append(f"{info['mathErrors']} MathJax error(s)")
    texts = [info["prose"], *info["outputs"]]
    if info["tracebackNodes"] or any(TRACEBACK.search(t) for t in texts):
        result.problems.append("traceback text")
    if UNFILLED_GLUE.search(info["prose"]):
        result.problems.append("unfilled glue")
    if NUMPY_REPR.search(info["prose"]):
        result.problems.append("a numpy repr in the prose (glue a float or int, not np.float64)")
    missing = sum(1 for images in info["widgetDemos"] if images == 0)
    if info["widgetDemos"]:
        demos = len(info["widgetDemos"])
        result.widget_demos = f"{demos - missing}/{demos}"
    if missing:
        result.problems.append(f"{missing} widget demo(s) without a static figure")
    if info["problemNodes"]:
        result.problems.append(f"{info['problemNodes']} docutils error node(s)")
    if any(mime in html_text for mime in WIDGET_MIME):
        result.problems.append("saved widget state (use lessonlib.widgets.interactive_figure)")
    if any(TQDM_TEXT.search(t) for t in info["outputs"]):
        result.problems.append("text-mode tqdm bar (use lessonlib.progress.progress)")
    for link in sorted(set(info["links"])):
        target = local_target(html, base, link.split("#")[0])
        if target is not None and not target.exists():
            result.problems.append(f"broken local link {link}")
    if result.lesson:
        result.problems += check_launch_links(stem, info["links"])

    result.requests = len(events["requests"])
    result.external = sorted(set(events["external"]))
    result.failed = sorted(set(events["failed"]))
    result.js_errors = events["js"]
    return result


def table(results: list[PageResult]) -> str:
    """Format the per-page results."""
    header = (
        "page",
        "result",
        "figures",
        "images",
        "broken",
        "math",
        "widgets",
        "requests",
        "outside",
        "s",
    )
    rows = [header]
    for r in results:
        rows.append(
            (
                r.path,
                "ok" if r.ok else "FAIL",
                str(r.figures) if r.lesson else "-",
                str(r.images),
                str(r.broken_images),
                r.math,
                r.widget_demos,
                str(r.requests),
                str(len(r.external)),
                f"{r.seconds:.1f}",
            )
        )
    widths = [max(len(row[i]) for row in rows) for i in range(len(header))]
    lines = ["  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)) for row in rows]
    lines.insert(1, "  ".join("-" * w for w in widths))
    for r in results:
        for label, items in (
            ("problem", r.problems),
            ("outside request (blocked)", r.external),
            ("failed request", r.failed),
            ("JavaScript error", r.js_errors),
        ):
            lines += [f"  {r.path}: {label}: {item}" for item in items]
    return "\n".join(lines)


def run(html: Path, toc: Path, screenshots: Path, browser_path: str) -> int:
    from playwright.sync_api import sync_playwright

    lessons = toc_lessons(toc)
    stems = {Path(lesson).name for lesson in lessons}
    pages = book_pages(html)
    missing = [f"{lesson}.html" for lesson in lessons if f"{lesson}.html" not in pages]
    screenshots.mkdir(parents=True, exist_ok=True)
    server, base = serve(html)
    results: list[PageResult] = []
    start = time.perf_counter()
    try:
        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=browser_path, args=BROWSER_ARGS)
            context = browser.new_context(viewport={"width": 1280, "height": 900})
            for rel in pages:
                page = context.new_page()
                try:
                    result = check_page(page, base, html, rel, stems)
                except Exception as err:  # noqa: BLE001 - report the page and go on
                    result = PageResult(path=rel, lesson=Path(rel).stem in stems)
                    result.problems.append(f"could not be checked: {err}")
                if result.lesson:
                    shot = screenshots / f"{Path(rel).stem}.png"
                    page.screenshot(path=str(shot), full_page=True)
                results.append(result)
                page.close()
            browser.close()
    finally:
        server.shutdown()
        server.server_close()
    report = table(results)
    for rel in missing:
        report += f"\n  {rel}: problem: lesson listed in {toc} was not built"
    failed = [r for r in results if not r.ok]
    elapsed = time.perf_counter() - start
    summary = (
        f"browser test: {len(results) - len(failed)} passed, {len(failed) + len(missing)} failed "
        f"({len(results)} pages, {len(lessons)} lessons, {elapsed:.1f} s; "
        f"screenshots in {screenshots})"
    )
    (screenshots / "report.txt").write_text(report + "\n" + summary + "\n")
    print(report)
    print(summary)
    return 1 if failed or missing else 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--html", type=Path, default=Path("_build/html"))
    parser.add_argument("--toc", type=Path, default=Path("_toc.yml"))
    parser.add_argument("--screenshots", type=Path, default=Path("_build/screenshots"))
    args = parser.parse_args(argv)
    if not (args.html / "index.html").is_file():
        print(f"browser test: {args.html}/index.html not found; run `make html` first")
        return 1
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return skip_or_fail("Python playwright is not installed (pip install playwright).")
    browser_path = find_browser()
    if browser_path is None and os.environ.get("LESSONLIB_BROWSER"):
        return skip_or_fail(f"LESSONLIB_BROWSER={os.environ['LESSONLIB_BROWSER']} was not found.")
    if browser_path is None:
        return skip_or_fail(
            f"No Chromium-family browser found (looked for {', '.join(BROWSER_NAMES)})."
        )
    print(f"browser test: {browser_path}, {args.html}")
    try:
        return run(args.html, args.toc, args.screenshots, browser_path)
    except Exception as err:
        if "launch" in str(err).lower() or "executable" in str(err).lower():
            return skip_or_fail(f"Chromium at {browser_path} did not start: {err}")
        raise


if __name__ == "__main__":
    sys.exit(main())
