"""Lazy package exports (PEP 562): ``import clinitune.rag`` stays cheap until a name is used.

A package lists its public names and the module defining each, then::

    __getattr__ = lazy_getattr(__name__, _EXPORTS)
"""

from __future__ import annotations

import importlib
from typing import Any, Callable


def lazy_getattr(package: str, exports: dict[str, str]) -> Callable[[str], Any]:
    """A module-level ``__getattr__`` importing ``exports[name]`` on first use of ``name``."""

    def __getattr__(name: str) -> Any:
        if name in exports:
            return getattr(importlib.import_module(exports[name]), name)
        raise AttributeError(f"module {package!r} has no attribute {name!r}")

    return __getattr__
