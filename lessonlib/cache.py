"""The on-disk cache: where downloads and computed features live.

Every file lessonlib fetches has a pinned sha256, is written to a temporary
file in the same folder and renamed into place, and is fetched again when the
cached copy does not match its checksum.  The cache never holds a half-written
file.  The folder is ``$LESSONLIB_CACHE``, or a per-user cache folder.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
import urllib.request
from collections.abc import Callable
from pathlib import Path

import numpy as np

CACHE_ENV = "LESSONLIB_CACHE"
DEFAULT_TIMEOUT = 20.0


class ChecksumError(ValueError):
    """A file's sha256 does not match the pinned value."""


def cache_dir(subdir: str | None = None) -> Path:
    """Return (and create) the cache folder, or a sub-folder of it.

    Examples
    --------
    >>> import os, tempfile
    >>> os.environ["LESSONLIB_CACHE"] = tempfile.mkdtemp()
    >>> cache_dir("mnist").name
    'mnist'
    """
    root = os.environ.get(CACHE_ENV)
    base = Path(root) if root else Path.home() / ".cache" / "lessonlib"
    path = base / subdir if subdir else base
    path.mkdir(parents=True, exist_ok=True)
    return path


def sha256_of(path: str | os.PathLike) -> str:
    """Return the hex sha256 of a file.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> p = pathlib.Path(tempfile.mkdtemp()) / "a.txt"
    >>> _ = p.write_bytes(b"abc")
    >>> sha256_of(p)[:12]
    'ba7816bf8f01'
    """
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def atomic_write(path: str | os.PathLike, write: Callable[[Path], None]) -> Path:
    """Call ``write(tmp_path)`` and rename the temporary file onto ``path``.

    If ``write`` raises, the temporary file is removed and ``path`` is left as
    it was, so a reader never sees a half-written file.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".part", dir=path.parent)
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        write(tmp_path)
        os.replace(tmp_path, path)
    finally:
        if tmp_path.exists():
            tmp_path.unlink()
    return path


def fetch(
    url: str,
    *,
    filename: str,
    sha256: str,
    subdir: str = "downloads",
    timeout: float = DEFAULT_TIMEOUT,
) -> Path:
    """Return a verified local copy of ``url``, downloading it if needed.

    Parameters
    ----------
    url : str
        Source address (``http(s)://`` or ``file://``).
    filename : str
        Name of the file inside the cache sub-folder.
    sha256 : str
        The pinned hex digest the file must have.
    subdir : str
        Cache sub-folder.
    timeout : float
        Socket timeout in seconds, so a dead host never hangs a lesson.

    Returns
    -------
    pathlib.Path
        Path of the verified file.

    Raises
    ------
    ChecksumError
        If the downloaded file does not match ``sha256``; the bad bytes are
        not kept.
    OSError
        If the download fails (network down, timeout, HTTP error).
    """
    if not isinstance(url, str) or "://" not in url:
        raise ValueError(f"url must be an absolute URL string, got {url!r}")
    if (
        not isinstance(sha256, str)
        or len(sha256) != 64
        or any(c not in "0123456789abcdef" for c in sha256.lower())
    ):
        raise ValueError(f"sha256 must be a 64-character hex digest, got {sha256!r}")
    sha256 = sha256.lower()
    target = cache_dir(subdir) / filename
    if target.exists():
        if sha256_of(target) == sha256:
            return target
        target.unlink()  # corrupt or stale: fetch again

    def download(tmp: Path) -> None:
        with urllib.request.urlopen(url, timeout=timeout) as response, open(tmp, "wb") as out:
            for block in iter(lambda: response.read(1 << 20), b""):
                out.write(block)
        got = sha256_of(tmp)
        if got != sha256:
            raise ChecksumError(
                f"{filename} from {url} has sha256 {got}, expected {sha256}; the file was discarded"
            )

    return atomic_write(target, download)


def save_arrays(path: str | os.PathLike, **arrays: np.ndarray) -> Path:
    """Save arrays to an ``.npz`` file atomically, with a checksum beside it.

    The checksum lets :func:`load_arrays` detect a corrupt file.
    """
    path = Path(path)

    def write(tmp: Path) -> None:
        with open(tmp, "wb") as handle:
            np.savez(handle, **arrays)

    atomic_write(path, write)
    digest = sha256_of(path)
    atomic_write(path.with_suffix(".sha256"), lambda tmp: tmp.write_text(digest))
    return path


def load_arrays(path: str | os.PathLike) -> dict[str, np.ndarray] | None:
    """Load arrays saved by :func:`save_arrays`, or None if missing or corrupt.

    A file whose checksum is missing or wrong is deleted, so the caller
    recomputes it instead of silently reusing bad data.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> p = pathlib.Path(tempfile.mkdtemp()) / "x.npz"
    >>> _ = save_arrays(p, a=np.arange(3))
    >>> load_arrays(p)["a"].tolist()
    [0, 1, 2]
    >>> _ = p.write_bytes(b"garbage")
    >>> load_arrays(p) is None
    True
    """
    path = Path(path)
    check = path.with_suffix(".sha256")
    if not path.exists():
        return None
    if not check.exists() or check.read_text().strip() != sha256_of(path):
        path.unlink(missing_ok=True)
        check.unlink(missing_ok=True)
        return None
    with np.load(path, allow_pickle=False) as data:
        return {key: data[key] for key in data.files}
