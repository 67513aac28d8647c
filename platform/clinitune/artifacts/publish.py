"""Publishing whole: every output is built beside its destination and swapped in at once.

``publish_whole(output)`` is a context manager that yields a staging path next to ``output``
(a fresh directory, or with ``file=True`` a file path); the caller writes everything there, and
when the block ends without an exception the staging is swapped in. An exception removes the
staging and leaves the published output as it was. Names beside ``DIR`` while a write is in
flight::

    .DIR.staging-<id>/    the output being written; removed when the writer fails or by ``recover``
    .DIR.previous-<id>/   the previously published output, during the fallback swap only

A directory is swapped with one atomic ``renameat2(RENAME_EXCHANGE)`` where the file system
supports it (Linux: ext4, xfs, btrfs, tmpfs, overlayfs), so a reader sees the old output or the
new one and never neither. Elsewhere the old output is moved aside and the new one renamed in; a
crash between the two renames leaves ``DIR`` missing with ``.DIR.previous-*`` beside it, and
``recover(DIR)`` (which every ``publish_whole`` runs first) puts it back. A file is published with
``os.replace``, which is atomic everywhere. Object-store destinations are not written here: they
keep their own atomic put.
"""

from __future__ import annotations

import ctypes
import errno
import logging
import os
import shutil
import uuid
from contextlib import contextmanager
from pathlib import Path
from typing import Callable, Iterator

log = logging.getLogger(__name__)

# Called with the name of each point of a swap ("staged", "moved_aside", "swapped"); tests set it
# to kill the process there and check that the output is whole afterwards.
_fault_hook: Callable[[str], None] | None = None

_AT_FDCWD = -100
_RENAME_NOREPLACE = 1
_RENAME_EXCHANGE = 2


def _fault(point: str) -> None:
    if _fault_hook is not None:
        _fault_hook(point)


def _load_renameat2():
    try:
        fn = ctypes.CDLL(None, use_errno=True).renameat2
    except (AttributeError, OSError):
        return None
    fn.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_uint]
    fn.restype = ctypes.c_int
    return fn


_renameat2 = _load_renameat2()
_exchange_supported = _renameat2 is not None


def _rename2(src: Path, dst: Path, flags: int) -> None:
    if _renameat2(_AT_FDCWD, os.fsencode(src), _AT_FDCWD, os.fsencode(dst), flags) != 0:
        err = ctypes.get_errno()
        raise OSError(err, os.strerror(err), str(src), None, str(dst))


def staging_path(output: str | Path, run_id: str | None = None) -> Path:
    """Where the next version of ``output`` is built: a hidden sibling, so the rename stays on one file system."""
    output = Path(output)
    return output.parent / f".{output.name}.staging-{run_id or uuid.uuid4().hex[:12]}"


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        try:
            path.unlink()
        except FileNotFoundError:
            pass


def recover(output: str | Path, *, stale_staging: bool = False) -> None:
    """Undo what a crash left beside ``output``.

    A published output moved aside mid-swap is put back when ``output`` is missing (otherwise the
    aside copy is stale and removed). With ``stale_staging`` the staging of runs that did not
    finish is removed too; only a writer that owns ``output`` alone may ask for that, since a
    concurrent writer's staging looks the same.
    """
    output = Path(output)
    parent = output.parent
    if not parent.is_dir():
        return
    if stale_staging:
        for leftover in parent.glob(f".{output.name}.staging-*"):
            log.warning("removing the staging of an earlier run that did not finish: %s", leftover.name)
            _remove(leftover)
    previous = sorted(parent.glob(f".{output.name}.previous-*"), key=lambda p: p.stat().st_mtime)
    if previous and not output.exists():
        try:
            os.rename(previous[-1], output)
            log.warning("restored the previously published %s after an interrupted publish", output.name)
        except OSError:  # another process restored or published it first
            pass
        previous = previous[:-1]
    for old in previous:
        _remove(old)


def _complete(output: Path, require: str | None) -> bool:
    return output.exists() and (require is None or (output / require).is_file())


def _swap_in(staging: Path, output: Path, keep_existing: bool) -> bool:
    """Make ``staging`` the published ``output``; False when ``keep_existing`` kept one already there."""
    if _exchange_supported:
        try:
            _rename2(staging, output, _RENAME_NOREPLACE)
            _fault("swapped")
            return True
        except OSError as err:
            if err.errno not in (errno.EEXIST, errno.ENOTEMPTY):
                if err.errno not in (errno.EINVAL, errno.ENOSYS, errno.EOPNOTSUPP):
                    raise
                return _swap_aside(staging, output, keep_existing)
        if keep_existing:
            return False
        try:
            _rename2(staging, output, _RENAME_EXCHANGE)  # staging now holds the old output
        except OSError as err:
            if err.errno not in (errno.EINVAL, errno.ENOSYS, errno.EOPNOTSUPP):
                raise
            return _swap_aside(staging, output, keep_existing)
        _fault("swapped")
        _remove(staging)
        return True
    return _swap_aside(staging, output, keep_existing)


def _swap_aside(staging: Path, output: Path, keep_existing: bool) -> bool:
    backup = None
    if output.exists():
        if keep_existing:
            return False
        backup = output.parent / f".{output.name}.previous-{uuid.uuid4().hex[:12]}"
        os.rename(output, backup)
        _fault("moved_aside")
    os.rename(staging, output)
    _fault("swapped")
    if backup is not None:
        _remove(backup)
    return True


@contextmanager
def publish_whole(output: str | Path, *, file: bool = False, require: str | None = None,
                  keep_existing: bool = False, run_id: str | None = None,
                  stale_staging: bool = False) -> Iterator[Path]:
    """Build ``output`` in a staging path (yielded) and publish it whole when the block succeeds.

    ``file``: ``output`` is one file (the staging path is not created; write it). ``require``: a
    file that must exist inside the staging directory (a manifest written last) or nothing is
    published. ``keep_existing``: a complete output already there (published by a concurrent writer
    of the same content, e.g. a model conversion) wins and the staging is discarded. ``run_id`` names the
    staging. ``stale_staging``: also clear leftover staging of earlier runs (see ``recover``).
    """
    output = Path(output)
    output.parent.mkdir(parents=True, exist_ok=True)
    recover(output, stale_staging=stale_staging)
    staging = staging_path(output, run_id)
    if not file:
        staging.mkdir()
    try:
        yield staging
        if file:
            if not staging.is_file():
                raise RuntimeError(f"refusing to publish {output.name}: nothing was written to its staging file")
            _fault("staged")
            if keep_existing and output.exists():
                return
            os.replace(staging, output)
            _fault("swapped")
            return
        if require is not None and not (staging / require).is_file():
            raise RuntimeError(f"refusing to publish {output.name}: its staging has no {require}")
        _fault("staged")
        _swap_in(staging, output, keep_existing and _complete(output, require))
    finally:
        if staging.exists() or staging.is_symlink():
            _remove(staging)


def write_whole(path: str | Path, text: str) -> Path:
    """Write a small text file (JSON, a report) whole: readers see the old content or the new."""
    path = Path(path)
    with publish_whole(path, file=True) as tmp:
        tmp.write_text(text, encoding="utf-8")
    return path
