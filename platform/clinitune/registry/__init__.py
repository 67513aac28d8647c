"""Model registry on MLflow (``clinitune registry``): versions with lineage, ``candidate`` and
``production`` aliases, promote and one-command rollback, serving reload notification.

Serving reads ``Registry(uri).get_alias("production").local_path`` or watches
``<workdir>/registry/production.json``.
"""

from __future__ import annotations

from clinitune._lazy import lazy_getattr

_EXPORTS = {
    "Registry": "clinitune.registry.client",
    "VersionInfo": "clinitune.registry.client",
    "CANDIDATE": "clinitune.registry.client",
    "PRODUCTION": "clinitune.registry.client",
    "DEFAULT_MODEL_NAME": "clinitune.registry.settings",
    "RegistrySettings": "clinitune.registry.settings",
    "NOTIFY_FILE": "clinitune.registry.client",
    "check_reachable": "clinitune.registry.client",
}
__all__ = sorted(_EXPORTS)

__getattr__ = lazy_getattr(__name__, _EXPORTS)
