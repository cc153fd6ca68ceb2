"""What a run tells the person watching it: a line per stage with its counts, a bar on long steps.

The stages report to `current()`, which stays silent until the front door (the CLI, a served flow
run) installs a reporter with `reporting(...)`, the way logging is configured once at the edge:

    with progress.reporting(progress.for_stream(sys.stderr)):
        run(...)

On a terminal the reporter draws rich's live bars (finished stages stay above them as lines);
elsewhere (a log file, CI, a served run's output) it prints plain lines, one per stage start and end.
"""
from __future__ import annotations

import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TextIO


class Reporter:
    """Silent: the reporter of library calls and tests."""

    def stage(self, title: str, total: int | None = None) -> None:
        """A stage starts; `total` units of work when known (drawn as a bar)."""

    def set_total(self, total: int) -> None:
        """The current stage's units of work, once the stage knows them."""

    def advance(self, units: int = 1) -> None:
        """`units` of the current stage's work are done."""

    def done(self, summary: str) -> None:
        """The current stage ends; `summary` says what it did, with counts."""

    def line(self, text: str) -> None:
        """A line outside any stage (a run starts, a scheduled run ends)."""

    def close(self) -> None:
        """Stop drawing."""


class PlainReporter(Reporter):
    """One line when a stage starts and one when it ends, with the seconds it took."""

    def __init__(self, stream: TextIO, prefix: str = "goodhart") -> None:
        self.stream = stream
        self.prefix = prefix
        self._started = time.monotonic()

    def stage(self, title: str, total: int | None = None) -> None:
        self._started = time.monotonic()
        self.line(f"{title} ...")

    def done(self, summary: str) -> None:
        self.line(f"{summary} ({time.monotonic() - self._started:.1f} s)")

    def line(self, text: str) -> None:
        print(f"{self.prefix}: {text}", file=self.stream, flush=True)


class RichReporter(Reporter):
    """rich's live display on a terminal: a spinner or bar for the stage in progress; each finished
    stage stays above it as a line. Safe to call from the flow's worker threads."""

    def __init__(self, stream: TextIO) -> None:
        from rich.console import Console
        from rich.progress import (BarColumn, MofNCompleteColumn, Progress, SpinnerColumn, TextColumn,
                                   TimeElapsedColumn)

        self._progress = Progress(
            SpinnerColumn(), TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
            console=Console(file=stream), transient=True,
        )
        self._lock = threading.Lock()
        self._task: int | None = None
        self._started = time.monotonic()
        self._progress.start()

    def stage(self, title: str, total: int | None = None) -> None:
        with self._lock:
            self._drop_task()
            self._started = time.monotonic()
            self._task = self._progress.add_task(title, total=total)

    def set_total(self, total: int) -> None:
        with self._lock:
            if self._task is not None:
                self._progress.update(self._task, total=total)

    def advance(self, units: int = 1) -> None:
        with self._lock:
            if self._task is not None:
                self._progress.advance(self._task, units)

    def done(self, summary: str) -> None:
        with self._lock:
            self._drop_task()
            self._progress.console.print(f"[green]✓[/] {summary} [dim]({time.monotonic() - self._started:.1f} s)[/]",
                                         highlight=False)

    def line(self, text: str) -> None:
        self._progress.console.print(text, highlight=False, markup=False)

    def close(self) -> None:
        with self._lock:
            self._drop_task()
        self._progress.stop()

    def _drop_task(self) -> None:
        if self._task is not None:
            self._progress.remove_task(self._task)
            self._task = None


def for_stream(stream: TextIO) -> Reporter:
    """Bars on a terminal, plain lines anywhere else."""
    return RichReporter(stream) if stream.isatty() else PlainReporter(stream)


_current: Reporter = Reporter()


def current() -> Reporter:
    """The reporter the running stages write to (silent unless one was installed)."""
    return _current


@contextmanager
def reporting(reporter: Reporter) -> Iterator[Reporter]:
    """Install `reporter` for the stages run inside the block, and stop it afterwards."""
    global _current
    previous, _current = _current, reporter
    try:
        yield reporter
    finally:
        _current = previous
        reporter.close()


def plain_unless_installed() -> Reporter | None:
    """A plain reporter on stdout when none is installed (a served flow run prints to the serve
    command's output this way), else None: the installed one stays."""
    return PlainReporter(sys.stdout) if type(_current) is Reporter else None
