"""Publishing whole: outputs are built in a staging directory and swapped into place.

Layout while a run is in flight (siblings of the output directory ``DIR``)::

    .DIR.staging-<run_id>/   the run's output being written; removed if the run crashes
    .DIR.previous-<run_id>/  the previously published output, during the swap only

A crashed run never leaves a partial ``DIR``: either the old complete output or the new one is
there. The manifest is written last inside staging, so a directory without ``manifest.json`` is
never published. ``recover`` repairs the one window where a crash can leave ``DIR`` missing.
"""

from __future__ import annotations

import logging
import os
import shutil
import uuid
from pathlib import Path

log = logging.getLogger(__name__)

MANIFEST = "manifest.json"


def staging_dir(output: Path, run_id: str | None = None) -> Path:
    run_id = run_id or uuid.uuid4().hex[:12]
    return output.parent / f".{output.name}.staging-{run_id}"


def recover(output: Path) -> None:
    """Undo what a crash left: stale staging dirs, or a published output moved aside mid-swap."""
    parent = output.parent
    if not parent.exists():
        return
    for leftover in parent.glob(f".{output.name}.staging-*"):
        log.warning("removing staging directory of an earlier run that did not finish: %s", leftover.name)
        shutil.rmtree(leftover, ignore_errors=True)
    previous = sorted(parent.glob(f".{output.name}.previous-*"))
    if previous and not (output / MANIFEST).exists():
        if output.exists():
            shutil.rmtree(output)
        os.rename(previous[-1], output)
        log.warning("restored the previously published output after an interrupted publish")
        previous = previous[:-1]
    for old in previous:
        shutil.rmtree(old, ignore_errors=True)


def publish(staging: Path, output: Path) -> None:
    """Swap the complete staging directory into ``output``."""
    if not (staging / MANIFEST).exists():
        raise RuntimeError(f"refusing to publish {staging}: it has no {MANIFEST}")
    output.parent.mkdir(parents=True, exist_ok=True)
    backup = None
    if output.exists():
        backup = output.parent / f".{output.name}.previous-{uuid.uuid4().hex[:12]}"
        os.rename(output, backup)
    os.rename(staging, output)
    if backup is not None:
        shutil.rmtree(backup, ignore_errors=True)
