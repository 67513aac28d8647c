"""Model registry on MLflow (``clinitune registry``): versions with lineage, ``candidate`` and
``production`` aliases, promote and one-command rollback, serving reload notification.

Serving (issue 6) reads ``Registry(uri).get_alias("production").local_path`` or watches
``<workdir>/registry/production.json``.
"""

from __future__ import annotations

_EXPORTS = {
    "Registry": "clinitune.registry.client",
    "VersionInfo": "clinitune.registry.client",
    "CANDIDATE": "clinitune.registry.client",
    "PRODUCTION": "clinitune.registry.client",
    "DEFAULT_MODEL_NAME": "clinitune.registry.client",
    "NOTIFY_FILE": "clinitune.registry.client",
    "check_reachable": "clinitune.registry.client",
}
__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    if name in _EXPORTS:
        import importlib

        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'clinitune.registry' has no attribute {name!r}")
