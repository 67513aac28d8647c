"""Shared CLI helpers: an output-directory check that fails as a one-line user error, and progress bars."""

from __future__ import annotations

from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

from rich.progress import BarColumn, MofNCompleteColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

from clinitune.errors import InputPathError


def output_dir(path: str | Path, what: str = "output") -> Path:
    p = Path(path)
    if p.exists() and not p.is_dir():
        raise InputPathError(f"{what} path '{p}' exists and is not a directory. Fix: pass a directory path.")
    return p


@contextmanager
def progress(description: str, total: int | None = None) -> Iterator[tuple[Progress, int]]:
    """A rich progress bar on stderr: ``with progress("curating", n) as (bar, task): bar.advance(task)``."""
    columns = [SpinnerColumn(), TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn()]
    with Progress(*columns, transient=False) as bar:
        task = bar.add_task(description, total=total)
        yield bar, task
