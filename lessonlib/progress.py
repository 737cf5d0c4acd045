"""Progress bars that work live and in the static book.

In a live kernel :func:`progress` returns a ``tqdm.auto`` bar.  When
``LESSONLIB_STATIC=1`` (reference execution, nbval, the book build) it returns a
bar that prints one final summary line, which reads well in HTML and is easy to
sanitize in nbval.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Iterable, Iterator
from typing import Any

from lessonlib.profiles import is_static


class StaticBar:
    """A minimal tqdm stand-in that prints a single line when it closes."""

    def __init__(
        self, iterable: Iterable | None = None, *, total: int | None = None, desc: str = ""
    ):
        self.iterable = iterable
        self.total = total if total is not None else _len_or_none(iterable)
        self.desc = desc
        self.n = 0
        self.postfix: dict[str, Any] = {}
        self._start = time.perf_counter()
        self._closed = False

    def __iter__(self) -> Iterator:
        if self.iterable is None:
            raise TypeError("StaticBar needs an iterable to iterate over")
        try:
            for item in self.iterable:
                yield item
                self.n += 1
        finally:
            self.close()

    def __enter__(self) -> StaticBar:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def update(self, n: int = 1) -> None:
        """Advance the counter by ``n``."""
        self.n += n

    def set_postfix(
        self, ordered_dict: dict | None = None, refresh: bool = True, **kwargs: Any
    ) -> None:
        """Remember values to show in the final line (same call as tqdm)."""
        self.postfix.update(ordered_dict or {})
        self.postfix.update(kwargs)

    def close(self) -> None:
        """Print the summary line once."""
        if self._closed:
            return
        self._closed = True
        elapsed = time.perf_counter() - self._start
        total = f"/{self.total}" if self.total is not None else ""
        extras = ", ".join(f"{k}={_fmt(v)}" for k, v in self.postfix.items())
        extras = f" [{extras}]" if extras else ""
        print(f"{self.desc}: {self.n}{total} done in {elapsed:.1f} s{extras}", file=sys.stdout)


def _fmt(value: Any) -> str:
    return f"{value:.4g}" if isinstance(value, float) else str(value)


def _len_or_none(iterable: Iterable | None) -> int | None:
    try:
        return len(iterable)  # type: ignore[arg-type]
    except TypeError:
        return None


def progress(iterable: Iterable | None = None, *, total: int | None = None, desc: str = "") -> Any:
    """Return a progress bar suited to where the code runs.

    Parameters
    ----------
    iterable : iterable, optional
        What to iterate over; omit it and call ``update`` by hand.
    total : int, optional
        Number of steps, if ``iterable`` has no length.
    desc : str
        Label shown before the bar.

    Returns
    -------
    tqdm.auto.tqdm or StaticBar
        A live bar, or a static one when ``LESSONLIB_STATIC=1``.

    Examples
    --------
    >>> import os; os.environ["LESSONLIB_STATIC"] = "1"
    >>> for _ in progress(range(3), desc="demo"):
    ...     pass
    demo: 3/3 done in 0.0 s
    """
    if iterable is not None:
        try:
            iter(iterable)
        except TypeError:
            raise TypeError(f"iterable must be iterable, got {type(iterable).__name__}") from None
    if is_static():
        return StaticBar(iterable, total=total, desc=desc)
    from tqdm.auto import tqdm

    return tqdm(iterable, total=total, desc=desc)
