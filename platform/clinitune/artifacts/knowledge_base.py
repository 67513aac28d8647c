"""Where knowledge bases live: the one location rule the CLI, serving and evaluation share.

A knowledge-base store is a LanceDB root (a directory or an object-store URI such as
``s3://bucket/kb`` for a store shared by a cluster) holding one table per knowledge base;
``clinitune.rag.store.KbStore`` reads and writes it (LanceDB commits each write atomically).
"""

from __future__ import annotations

from pathlib import Path

DEFAULT_DIR = "kb"


def store_root(workdir: str | Path, root: str | None = None) -> str:
    """``root`` when given, else ``<workdir>/kb``."""
    return root or str(Path(workdir) / DEFAULT_DIR)
