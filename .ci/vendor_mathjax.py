"""Vendor MathJax 3 from the npm registry into the book build.

The built book must load nothing from outside its own folder, so a classroom can
serve ``_build/html`` from a laptop with no internet.  Sphinx loads MathJax from a
CDN by default; this script fetches the official ``mathjax`` npm package (with
``npm pack``, the registry's ordinary client), checks it against a pinned sha512,
and unpacks the parts the book uses into ``_build/vendor/html/mathjax/``.  The
book copies that folder to ``_build/html/mathjax/`` through ``html_extra_path``
(not ``_static/``: Jupyter Book would add every ``_static/**/*.js`` to every page)
and points ``mathjax_path`` at it.

Nothing is committed: the tarball is 6 MB, and npm keeps it in its own cache, so
a rebuild works offline once it has been fetched.

Kept: the combined ``tex-mml-chtml.js`` that Sphinx uses, the CommonHTML output
with its woff2 fonts, and the components MathJax loads on demand (TeX extensions
for ``autoload``, the context menu, the accessibility explorer and its speech
rules).  Dropped: the SVG output, the other combined files, the Node entry point
and ``latest.js`` (which itself loads MathJax from a CDN).

Usage: python .ci/vendor_mathjax.py [--dest _build/vendor/html/mathjax]
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

PACKAGE = "mathjax"
VERSION = "3.2.2"
# From the registry's metadata (`npm view mathjax@3.2.2 dist.integrity`).
INTEGRITY = (
    "sha512-Bt+SSVU8eBG27zChVewOicYs7Xsdt40qm4+UpHyX7k0/"
    "O9NliPc+x77k1/FEsPsjKPZGJvtRZM1vO+geW0OhGw=="
)
ENTRY = "tex-mml-chtml.js"
KEEP_TOP_LEVEL = {ENTRY, "core.js", "loader.js", "startup.js"}
DEFAULT_DEST = Path("_build/vendor/html/mathjax")


def integrity_of(path: Path) -> str:
    """Return the npm-style ``sha512-<base64>`` integrity string of a file."""
    digest = hashlib.sha512()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return "sha512-" + base64.b64encode(digest.digest()).decode()


def wanted(member: str) -> str | None:
    """Map a tarball member to its path under the vendored folder, or None to skip it.

    >>> wanted("package/es5/tex-mml-chtml.js")
    'tex-mml-chtml.js'
    >>> wanted("package/es5/output/chtml/fonts/woff-v2/MathJax_Main-Regular.woff")
    'output/chtml/fonts/woff-v2/MathJax_Main-Regular.woff'
    >>> [wanted(m) for m in ("package/es5/latest.js", "package/es5/output/svg.js")]
    [None, None]
    >>> wanted("package/LICENSE")
    'LICENSE'
    """
    if member == "package/LICENSE":
        return "LICENSE"
    if not member.startswith("package/es5/"):
        return None
    rel = member[len("package/es5/") :]
    if "/" not in rel and rel not in KEEP_TOP_LEVEL:
        return None
    if "svg" in rel:
        return None
    return rel


def npm_pack(workdir: Path) -> Path:
    """Fetch the pinned tarball with ``npm pack`` and return its path."""
    npm = shutil.which("npm")
    if npm is None:
        raise SystemExit(
            "vendor_mathjax: npm is needed to fetch MathJax for the offline book.\n"
            "  Debian/Ubuntu: apt-get install npm   macOS: brew install node\n"
            "  (the npm registry is the only network access the book build needs)"
        )
    spec = f"{PACKAGE}@{VERSION}"
    subprocess.run(
        [npm, "pack", spec, "--pack-destination", str(workdir), "--silent"],
        check=True,
        stdout=subprocess.DEVNULL,
    )
    tarball = workdir / f"{PACKAGE}-{VERSION}.tgz"
    if not tarball.is_file():
        raise SystemExit(f"vendor_mathjax: npm pack did not write {tarball}")
    return tarball


def unpack(tarball: Path, dest: Path) -> int:
    """Extract the wanted members into ``dest`` (replaced atomically); return the file count."""
    got = integrity_of(tarball)
    if got != INTEGRITY:
        raise SystemExit(
            f"vendor_mathjax: {tarball.name} fails its checksum\n  expected {INTEGRITY}\n"
            f"  got      {got}\n  run `npm cache clean --force` and try again"
        )
    dest.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".mathjax-", dir=dest.parent))
    count = 0
    with tarfile.open(tarball, "r:gz") as tar:
        for member in tar.getmembers():
            rel = wanted(member.name)
            if rel is None or not member.isfile():
                continue
            target = staging / rel
            target.parent.mkdir(parents=True, exist_ok=True)
            with tar.extractfile(member) as src, open(target, "wb") as out:  # type: ignore[union-attr]
                shutil.copyfileobj(src, out)
            count += 1
    if not (staging / ENTRY).is_file():
        raise SystemExit(f"vendor_mathjax: {ENTRY} missing from {tarball.name}")
    (staging / ".version").write_text(f"{VERSION}\n")
    if dest.exists():
        shutil.rmtree(dest)
    os.replace(staging, dest)
    return count


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dest", type=Path, default=DEFAULT_DEST)
    args = parser.parse_args(argv)
    stamp = args.dest / ".version"
    if stamp.is_file() and stamp.read_text().strip() == VERSION:
        print(f"vendor_mathjax: MathJax {VERSION} already in {args.dest}")
        return 0
    with tempfile.TemporaryDirectory() as tmp:
        tarball = npm_pack(Path(tmp))
        count = unpack(tarball, args.dest)
    size = sum(p.stat().st_size for p in args.dest.rglob("*") if p.is_file())
    print(f"vendor_mathjax: MathJax {VERSION} -> {args.dest} ({count} files, {size / 1e6:.1f} MB)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
