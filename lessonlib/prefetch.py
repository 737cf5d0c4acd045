"""Pre-fetch the full profile's datasets and weights into the lessonlib cache.

Run it once, with network access, on a classroom machine or a CI runner::

    python -m lessonlib.prefetch             # everything registered
    python -m lessonlib.prefetch --slow      # only the slow hosts (CIFAR-10, STL-10)
    python -m lessonlib.prefetch mnist cifar3 # by name
    python -m lessonlib.prefetch --list      # what is registered

Each source is fetched by the same lessonlib loader a lesson calls, into
``$LESSONLIB_CACHE`` (default ``~/.cache/lessonlib``), with its checksum checked.
Afterwards the full profile finds every file in the cache and needs no network.

Sources form a registry of name -> loader.  A loader is a callable, or a
``"module:function"`` string imported only when it runs, so listing sources
imports neither torch nor the loader modules.  A lesson helper that adds a
full-profile download gets one :func:`register` call at the end of this module.
"""

from __future__ import annotations

import argparse
import importlib
import re
import sys
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from lessonlib.cache import cache_dir
from lessonlib.profiles import OFFLINE_ENV, is_offline

_NAME = re.compile(r"^[a-z][a-z0-9_-]*$")


@dataclass(frozen=True)
class Source:
    """One downloadable dataset or set of weights.

    Attributes
    ----------
    name : str
        Short lower-case name used on the command line.
    loader : callable or str
        What downloads it: a callable, or ``"module:function"``.
    description : str
        One line for ``--list``.
    size : str
        Download size, for people (``"162 MB"``).
    slow : bool
        True for hosts that are slow or throttled (pre-fetch these first).
    kwargs : mapping
        Keyword arguments for the loader.
    """

    name: str
    loader: Callable[..., Any] | str
    description: str
    size: str = ""
    slow: bool = False
    kwargs: Mapping[str, Any] = field(default_factory=dict)

    def resolve(self) -> Callable[..., Any]:
        """Return the loader as a callable, importing its module if needed.

        Examples
        --------
        >>> Source("mnist", "lessonlib.data:download_mnist", "MNIST").resolve().__name__
        'download_mnist'
        """
        if callable(self.loader):
            return self.loader
        module_name, _, attr = self.loader.partition(":")
        try:
            return getattr(importlib.import_module(module_name), attr)
        except (ImportError, AttributeError) as err:
            raise RuntimeError(
                f"source {self.name!r}: cannot import loader {self.loader!r} ({err})"
            ) from err


@dataclass(frozen=True)
class Result:
    """The outcome of pre-fetching one source."""

    name: str
    ok: bool
    seconds: float
    attempts: int
    error: str = ""


SOURCES: dict[str, Source] = {}


def register(
    name: str,
    loader: Callable[..., Any] | str,
    *,
    description: str,
    size: str = "",
    slow: bool = False,
    kwargs: Mapping[str, Any] | None = None,
    replace: bool = False,
) -> Source:
    """Add a source to the registry and return it.

    Parameters
    ----------
    name : str
        Lower-case letters, digits, ``_`` and ``-``, starting with a letter.
    loader : callable or str
        A callable, or ``"module:function"`` imported when the source is fetched.
    description, size : str
        For ``--list``.
    slow : bool
        Whether the host is slow (selected by ``--slow``).
    kwargs : mapping, optional
        Keyword arguments passed to the loader.
    replace : bool
        Allow replacing a registered source of the same name.

    Raises
    ------
    ValueError
        For a malformed or already registered name, or a malformed loader string.

    Examples
    --------
    >>> src = register("demo", lambda: None, description="a test", replace=True)
    >>> src.name in SOURCES
    True
    >>> register("demo", "no_colon", description="x", replace=True)
    Traceback (most recent call last):
    ...
    ValueError: loader must be a callable or 'module:function', got 'no_colon'
    >>> del SOURCES["demo"]
    """
    if not isinstance(name, str) or not _NAME.match(name):
        raise ValueError(f"name must match {_NAME.pattern}, got {name!r}")
    if name in SOURCES and not replace:
        raise ValueError(f"source {name!r} is already registered")
    if not callable(loader) and not (isinstance(loader, str) and ":" in loader):
        raise ValueError(f"loader must be a callable or 'module:function', got {loader!r}")
    source = Source(name, loader, description, size, bool(slow), dict(kwargs or {}))
    SOURCES[name] = source
    return source


def select(names: Iterable[str] | None = None, *, slow_only: bool = False) -> list[Source]:
    """Return the registered sources to fetch, in registration order.

    Raises
    ------
    ValueError
        If a name is not registered.
    """
    names = list(names or [])
    unknown = [n for n in names if n not in SOURCES]
    if unknown:
        known = ", ".join(SOURCES) or "none"
        raise ValueError(f"unknown source(s) {', '.join(unknown)}; registered: {known}")
    chosen = [SOURCES[n] for n in names] if names else list(SOURCES.values())
    return [s for s in chosen if s.slow] if slow_only else chosen


def fetch_one(
    source: Source, *, retries: int = 2, delay: float = 10.0, echo: Callable[[str], Any] = print
) -> Result:
    """Run one source's loader, retrying failures ``retries`` times; never raises."""
    start = time.perf_counter()
    error = ""
    attempts = 0
    for attempt in range(1, retries + 2):
        attempts = attempt
        try:
            source.resolve()(**source.kwargs)
        except Exception as err:  # noqa: BLE001 - any failure is reported, then retried
            error = f"{type(err).__name__}: {err}"
            echo(f"prefetch: {source.name}: attempt {attempt} failed: {error}")
            if attempt <= retries:
                time.sleep(delay * attempt)
            continue
        return Result(source.name, True, time.perf_counter() - start, attempts)
    return Result(source.name, False, time.perf_counter() - start, attempts, error)


def prefetch(
    names: Iterable[str] | None = None,
    *,
    slow_only: bool = False,
    retries: int = 2,
    delay: float = 10.0,
    echo: Callable[[str], Any] = print,
) -> list[Result]:
    """Download the chosen sources into the cache, one after another.

    Parameters
    ----------
    names : iterable of str, optional
        Registered names; all sources when omitted.
    slow_only : bool
        Keep only the sources on slow hosts.
    retries : int
        Extra attempts after a failure.
    delay : float
        Seconds to wait before the first retry (doubled, tripled... after).
    echo : callable
        Where progress lines go.

    Returns
    -------
    list of Result
        One per source, in order.

    Raises
    ------
    RuntimeError
        When ``LESSONLIB_OFFLINE`` forbids downloads.
    ValueError
        For an unknown name.
    """
    if is_offline():
        raise RuntimeError(f"{OFFLINE_ENV} is set: unset it to pre-fetch (this needs the network)")
    sources = select(names, slow_only=slow_only)
    echo(f"prefetch: {len(sources)} source(s) into {cache_dir()}")
    results = []
    for source in sources:
        note = ", slow host" if source.slow else ""
        echo(f"prefetch: {source.name} ({source.size or 'size unknown'}{note}) ...")
        result = fetch_one(source, retries=retries, delay=delay, echo=echo)
        status = "ok" if result.ok else f"FAILED after {result.attempts} attempt(s)"
        echo(f"prefetch: {source.name}: {status} in {result.seconds:.1f} s")
        results.append(result)
    return results


def describe() -> str:
    """Return the registry as a table, one source a line."""
    width = max([len("name"), *(len(name) for name in SOURCES)])
    lines = [f"{'name':<{width}}  {'size':<8} {'slow':<5} description"]
    for s in SOURCES.values():
        slow = "yes" if s.slow else ""
        lines.append(f"{s.name:<{width}}  {s.size:<8} {slow:<5} {s.description}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """Command-line entry point; returns the exit status."""
    parser = argparse.ArgumentParser(
        prog="python -m lessonlib.prefetch",
        description="Download the full profile's datasets and weights into the lessonlib cache.",
    )
    parser.add_argument("names", nargs="*", help="sources to fetch (default: all)")
    parser.add_argument("--slow", action="store_true", help="only the slow hosts")
    parser.add_argument("--list", action="store_true", help="list the sources and exit")
    parser.add_argument("--retries", type=int, default=2, help="extra attempts (default 2)")
    args = parser.parse_args(argv)
    if args.list:
        print(describe())
        return 0
    try:
        results = prefetch(args.names, slow_only=args.slow, retries=args.retries)
    except (RuntimeError, ValueError) as err:
        print(f"prefetch: {err}", file=sys.stderr)
        return 2
    failed = [r for r in results if not r.ok]
    for r in failed:
        print(f"prefetch: {r.name} failed: {r.error}", file=sys.stderr)
    if failed:
        print(
            "prefetch: re-run to retry; a file that fails its checksum is deleted and fetched "
            "again. See the instructors' guide, 'Troubleshooting'.",
            file=sys.stderr,
        )
    print(f"prefetch: {len(results) - len(failed)} fetched, {len(failed)} failed")
    return 1 if failed else 0


# The registry, in the order a first-time download should go.  Sizes are
# download sizes; ``slow`` marks the hosts that ``--slow`` fetches first.
register(
    "mnist",
    "lessonlib.data:download_mnist",
    description="MNIST 60,000 / 10,000 (torchvision, S3 mirror)",
    size="11 MB",
)
register(
    "fashion-mnist",
    "lessonlib.data:download_fashion_mnist",
    description="Fashion-MNIST 60,000 / 10,000 (torchvision)",
    size="30 MB",
)
register(
    "cifar3",
    "lessonlib.cifar3:download_cifar3",
    description="CIFAR-10, kept as CIFAR-3: deer/frog/truck (throttled host: about an hour)",
    size="162 MB",
    slow=True,
)
register(
    "stl10",
    "lessonlib.imagesets:load_stl10",
    description="STL-10 labelled train and test images (single slow host)",
    size="2.5 GB",
    slow=True,
)
register(
    "caltech101",
    "lessonlib.imagesets:load_caltech22",
    description="Caltech101, read as seed 000's 22 categories",
    size="131 MB",
    kwargs={"image_size": 64},
)
register(
    "pets",
    "lessonlib.cats_dogs:download_pets",
    description="Oxford-IIIT Pet, cats vs dogs (torchvision)",
    size="800 MB",
)
register(
    "flowers102",
    "lessonlib.imagesets:load_flowers102",
    description="Oxford Flowers 102, official splits",
    size="345 MB",
    kwargs={"image_size": 64},
)
register(
    "resnet50",
    "lessonlib.pretrained:load_backbone",
    description="ResNet-50 ImageNet weights, IMAGENET1K_V2 (torchvision)",
    size="98 MB",
    kwargs={"name": "resnet50"},
)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
