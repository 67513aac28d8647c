"""The inbox: which note files are new (by content hash), and a snapshot of them for one run.

A run works on a snapshot (hard links, else copies, under ``runs/<run_id>/inputs/`` with the
inbox-relative names kept), so files arriving or disappearing while it runs, or before a crashed
run is resumed, do not change what it curates.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from clinitune.errors import InputPathError


def scan(inbox: str | Path, reader_cfg) -> list[dict]:
    """Every supported file in the inbox: ``{"name" (relative), "path", "size", "sha256"}``, sorted by name."""
    from clinitune.curate.readers import discover_inputs, fingerprint_file

    root = Path(inbox).expanduser()
    if not root.is_dir():
        raise InputPathError(f"inbox '{root}' is not a directory.", fix="create it, or set inbox to the directory new notes arrive in.")
    if not any(p.is_file() and not p.name.startswith(("_", ".")) for p in root.rglob("*")):
        return []
    files, _ = discover_inputs([str(root)], reader_cfg)
    out = []
    for f in files:
        fp = fingerprint_file(f.path)
        out.append({"name": str(Path(f.path).resolve().relative_to(root.resolve())), "path": str(f.path),
                    "size": fp["size"], "sha256": fp["sha256"]})
    return sorted(out, key=lambda d: d["name"])


def snapshot(files: list[dict], dest: str | Path) -> Path:
    """Hard-link (or copy) ``files`` into ``dest`` under their inbox-relative names."""
    dest = Path(dest)
    for f in files:
        target = dest / f["name"]
        target.parent.mkdir(parents=True, exist_ok=True)
        if target.exists():
            continue
        try:
            os.link(f["path"], target)
        except OSError:
            shutil.copy2(f["path"], target)
    return dest
