"""Which adapter answers which model id: static adapters from config and the model registry.

An :class:`AdapterSource` gives a snapshot ``model id -> AdapterRef``. The :class:`AdapterCatalog`
merges the base model, every source and the production alias (``model.name``) and is refreshed in
the background; requests resolve against the current snapshot and never wait on the registry.

Every adapter has a ``key`` that changes whenever its files do (a registry version, or a static
directory's file stamps). The key is the multiplexed model id on the generator replicas, so a
promotion or rollback makes the next request load the new adapter while requests in flight finish
on the old one: no restart, nothing dropped.
"""

from __future__ import annotations

import hashlib
import json
import logging
import threading
from abc import ABC, abstractmethod
from dataclasses import dataclass
from pathlib import Path

from clinitune.artifacts.model import ADAPTER_DIR, has_adapter, peek_descriptor
from clinitune.serve.config import ServeArgs, ServingRegistrySettings

log = logging.getLogger(__name__)

BASE_KEY = "__base__"


@dataclass(frozen=True)
class AdapterRef:
    """What serves a model id: an adapter directory (None = the base model) and its identity."""

    key: str  # multiplexed model id; changes when the files change
    name: str  # adapter name (static name or registered model name; "base" for the base model)
    path: str | None = None
    version: str | None = None
    system_prompt: str | None = None  # the system message the adapter was trained with
    problem: str | None = None  # why this entry cannot be served (shown as a 503)

    @property
    def fingerprint(self) -> str:
        return f"{self.name}@{self.version}" if self.version else self.key

    def public(self) -> dict:
        return {"name": self.name, "version": self.version, "fingerprint": self.fingerprint}


def _stamp(path: Path) -> str:
    """A short hash of the adapter files' sizes and modification times."""
    h = hashlib.sha1()
    for d in (path, path / ADAPTER_DIR):
        for name in ("adapter_config.json", "adapter_model.safetensors", "adapter_model.bin"):
            f = d / name
            if f.is_file():
                st = f.stat()
                h.update(f"{f}:{st.st_size}:{st.st_mtime_ns}".encode())
    return h.hexdigest()[:12]


def make_ref(key_prefix: str, name: str, path: str | Path, version: str | None = None) -> AdapterRef:
    """An AdapterRef for an adapter directory or a training artifact; problems are recorded, not raised."""
    p = Path(path)
    desc = peek_descriptor(p)
    problem = None
    if desc.get("kind") == "full":
        problem = f"'{name}' is a full fine-tune, not a LoRA adapter; serve it as model.base instead"
    elif not has_adapter(p):
        problem = f"adapter '{name}' has no adapter files at its path"
    key = f"{key_prefix}:{name}:" + (f"v{version}" if version else _stamp(p))
    return AdapterRef(key, name, str(p), version, desc.get("system_prompt"), problem)


class AdapterSource(ABC):
    """Where adapters come from."""

    @abstractmethod
    def snapshot(self) -> dict[str, AdapterRef]:
        """model id -> adapter for every adapter this source offers (may do I/O; called off the request path)."""

    def production(self) -> AdapterRef | None:
        """The adapter promoted to production, if this source knows one."""
        return None


class StaticAdapterSource(AdapterSource):
    """Adapters named in the config: ``{model id: directory}``, one of them optionally production."""

    def __init__(self, adapters: dict[str, str], production: str | None = None):
        self.adapters = dict(adapters)
        self._production = production

    def snapshot(self) -> dict[str, AdapterRef]:
        return {name: make_ref("static", name, path) for name, path in self.adapters.items()}

    def production(self) -> AdapterRef | None:
        if self._production is None:
            return None
        return make_ref("static", self._production, self.adapters[self._production])


class RegistryAdapterSource(AdapterSource):
    """The model registry: ``production`` from its pointer file (or alias) and every version as ``<served>:v<N>``."""

    def __init__(self, settings: ServingRegistrySettings, served_name: str, workdir: str):
        self.settings = settings
        self.served_name = served_name
        self.workdir = workdir
        self._registry = None
        self._pointer_cache: tuple[float, AdapterRef | None] | None = None

    def _client(self):
        if self._registry is None and self.settings.tracking_uri:
            from clinitune.registry import Registry

            self._registry = Registry(self.settings.tracking_uri, model_name=self.settings.model_name,
                                      workdir=self.workdir)
        return self._registry

    def _from_pointer(self) -> AdapterRef | None:
        path = Path(self.settings.pointer_file)
        try:
            mtime = path.stat().st_mtime_ns
        except FileNotFoundError:
            return None
        if self._pointer_cache and self._pointer_cache[0] == mtime:
            return self._pointer_cache[1]
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
            name = str(data.get("model_name") or self.settings.model_name)
            version = str(data["version"])
            artifact = data["artifact_path"]
        except (OSError, json.JSONDecodeError, KeyError, TypeError):
            log.warning("registry pointer file %s is unreadable or incomplete; keeping the previous production", path)
            return self._pointer_cache[1] if self._pointer_cache else None
        ref = make_ref("registry", name, artifact, version) if artifact else AdapterRef(
            f"registry:{name}:v{version}", name, None, version, problem=f"version {version} has no local artifact path")
        self._pointer_cache = (mtime, ref)
        return ref

    def production(self) -> AdapterRef | None:
        if self.settings.pointer_file:
            return self._from_pointer()
        reg = self._client()
        info = reg.get_alias("production") if reg else None
        return self._version_ref(info) if info else None

    def _version_ref(self, info) -> AdapterRef:
        if info.local_path and Path(info.local_path).exists():
            return make_ref("registry", info.name, info.local_path, info.version)
        try:
            info = self._client().resolve(info.version)  # downloads a remote artifact once
            return make_ref("registry", info.name, info.local_path, info.version)
        except Exception as err:  # noqa: BLE001 - a broken version must not break the catalog
            return AdapterRef(f"registry:{info.name}:v{info.version}", info.name, None, info.version,
                              problem=f"version {info.version} cannot be fetched ({type(err).__name__})")

    def snapshot(self) -> dict[str, AdapterRef]:
        reg = self._client()
        if reg is None:
            return {}
        return {f"{self.served_name}:v{v.version}": self._version_ref(v) for v in reg.list_versions()}


class AdapterCatalog:
    """Model id -> AdapterRef, merged from the base model, the sources and the production alias."""

    def __init__(self, args: ServeArgs, sources: list[AdapterSource] | None = None):
        self.served_name = args.model.name
        self.base_alias = args.model.base_alias
        if sources is None:
            sources = [StaticAdapterSource(args.adapters.static, args.adapters.production)]
            if args.adapters.registry is not None:
                sources.append(RegistryAdapterSource(args.adapters.registry, args.model.name, args.workdir))
        self.sources = sources
        self._lock = threading.Lock()
        self._entries: dict[str, AdapterRef] = {}
        self._production: AdapterRef | None = None
        self.refresh()

    def refresh(self) -> bool:
        """Re-read every source; returns True when production changed. Failing sources keep their last state."""
        entries: dict[str, AdapterRef] = {}
        production = None
        for src in self.sources:
            try:
                entries.update(src.snapshot())
                production = src.production() or production  # later sources (the registry) win
            except Exception as err:  # noqa: BLE001 - keep serving what we had
                log.warning("adapter source %s failed to refresh (%s); keeping its previous state", type(src).__name__, type(err).__name__)
                return False
        if self.base_alias:
            entries[self.base_alias] = AdapterRef(BASE_KEY, "base")
        with self._lock:
            changed = (production.key if production else None) != (self._production.key if self._production else None)
            self._entries = entries
            self._production = production
        if changed:
            log.info("production adapter is now %s", production.fingerprint if production else None)
        return changed

    def model_ids(self) -> list[str]:
        with self._lock:
            return [self.served_name, *sorted(self._entries)]

    def resolve(self, model_id: str) -> AdapterRef | None:
        """The adapter for ``model_id``; None when the id is unknown. A ref with ``problem`` cannot be served."""
        with self._lock:
            if model_id == self.served_name:
                return self._production or AdapterRef(
                    "", self.served_name, problem=f"no adapter is promoted to production for '{self.served_name}' yet")
            return self._entries.get(model_id)
