"""Progress for long CLI work, on stderr (stdout stays for results and ``--json``).

On a terminal: rich progress bars (rich ships with typer). Elsewhere (a pipe, a log file, CI, ``make``): plain
lines with the elapsed time, at most one every few seconds per task, so a log shows that work goes on and where.
``Reporter(enabled=False)`` is silent: library callers pass nothing and get no output.
"""

from __future__ import annotations

import time
from typing import Any


class Task:
    """One bar (folds, models, epochs): ``advance()`` after each unit of work, ``close()`` at the end."""

    def __init__(self, reporter: Reporter, description: str, total: int):
        self.reporter, self.description, self.total = reporter, description, max(int(total), 0)
        self.done = 0
        self._last_line = 0.0
        self._id = None
        if reporter.live is not None:
            self._id = reporter.live.add_task(description, total=self.total or None)
        elif reporter.enabled:
            reporter.step(f"{description}: 0/{self.total}")
            self._last_line = time.perf_counter()

    def advance(self, n: int = 1, detail: str | None = None) -> None:
        self.done += n
        r = self.reporter
        if r.live is not None:
            label = self.description + (f" [dim]{detail}[/dim]" if detail else "")
            r.live.update(self._id, advance=n, description=label)
        elif r.enabled:
            now = time.perf_counter()
            if self.done >= self.total or now - self._last_line >= r.line_every_s:
                r.step(f"{self.description}: {self.done}/{self.total}" + (f" ({detail})" if detail else ""))
                self._last_line = now

    def close(self) -> None:
        r = self.reporter
        if r.live is not None and self._id is not None:
            r.live.update(self._id, completed=self.total, description=self.description)
        elif r.enabled and self.done < self.total:
            r.step(f"{self.description}: done")

    def __enter__(self) -> Task:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


class Reporter:
    """Progress lines and bars on stderr; use as a context manager around the work."""

    def __init__(self, enabled: bool = True, *, line_every_s: float = 3.0, force_terminal: bool | None = None):
        self.enabled = enabled
        self.line_every_s = line_every_s
        self.t0 = time.perf_counter()
        self.live = None  # rich Progress while running on a terminal
        self.console = None
        if enabled:
            from rich.console import Console

            self.console = Console(stderr=True, force_terminal=force_terminal, highlight=False)

    def __enter__(self) -> Reporter:
        if self.enabled and self.console.is_terminal:
            from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

            self.live = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                                 TimeElapsedColumn(), console=self.console)
            self.live.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        if self.live is not None:
            self.live.stop()
            self.live = None

    def step(self, message: str) -> None:
        """One line, e.g. "featurizing 350 compositions", prefixed with the seconds since the start."""
        if not self.enabled:
            return
        line = f"[{time.perf_counter() - self.t0:6.1f} s] {message}"
        if self.live is not None:
            self.live.console.print(line, markup=False)
        else:
            self.console.print(line, markup=False, soft_wrap=True)

    def task(self, description: str, total: int) -> Task:
        return Task(self, description, total)


def silent() -> Reporter:
    return Reporter(enabled=False)
