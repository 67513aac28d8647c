"""Typed configuration: every job has one pydantic model with ``extra="forbid"``.

``load_config(path, Model)`` reads YAML and turns validation failures into a one-line
:class:`~clinitune.errors.ConfigError` that names the key, the problem and the fix.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Annotated, Any, TypeVar

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from clinitune.errors import ConfigError

T = TypeVar("T", bound=BaseModel)


class StrictModel(BaseModel):
    """Base for every config model: unknown keys are errors, every field documents itself."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True, protected_namespaces=())


RayAddress = Annotated[str | None, Field(
    description="Ray cluster to join (head:6379, ray://head:10001) or 'local' for a fresh local Ray; null = $RAY_ADDRESS, else the cluster `ray start --head` started on this machine, else a fresh local Ray.")]


class ExecutionSettings(StrictModel):
    """Where a job runs: the Ray cluster it joins, or the local instance it starts."""

    ray_address: RayAddress = None
    num_cpus: int | None = Field(None, ge=1, description="CPUs of a local Ray instance the job starts (ignored when it joins a cluster).")


def renamed_keys(data: Any, renames: dict[str, str], where: str) -> Any:
    """Move keys an older config spelled differently (``{"registry_uri": "registry.tracking_uri"}``) to
    their current place, for a ``model_validator(mode="before")``; the new spelling wins when both are given."""
    if not isinstance(data, dict) or not any(k in data for k in renames):
        return data
    import logging

    data = dict(data)
    for old, new in renames.items():
        if old not in data:
            continue
        value = data.pop(old)
        *parents, leaf = new.split(".")
        node = data
        for p in parents:
            node[p] = dict(node.get(p) or {})
            node = node[p]
        node.setdefault(leaf, value)
        logging.getLogger(__name__).warning("%s: '%s' is now '%s'; please rename it", where, old, new)
    return data


def _format_validation_error(err: ValidationError, source: str) -> str:
    first = err.errors()[0]
    loc = ".".join(str(p) for p in first.get("loc", ())) or "<root>"
    kind = first.get("type", "")
    if kind == "extra_forbidden":
        return (
            f"{source}: unknown config key '{loc}'. Fix: remove it or check its spelling "
            f"(see the documented keys in the example configs under jobs/configs/)."
        )
    if kind == "missing":
        return f"{source}: required config key '{loc}' is missing. Fix: add it."
    msg = first.get("msg", "invalid value")
    more = f" (and {len(err.errors()) - 1} more problem(s))" if len(err.errors()) > 1 else ""
    return f"{source}: config key '{loc}' is invalid: {msg}{more}. Fix: correct that value."


def validate_config(data: Any, model: type[T], source: str = "config") -> T:
    """Validate a plain dict against ``model``; raise ConfigError with a one-line message."""
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(f"{source}: expected a mapping of keys to values, got {type(data).__name__}.")
    try:
        return model.model_validate(data)
    except ValidationError as err:
        raise ConfigError(_format_validation_error(err, source)) from None


def read_yaml(path: str | Path) -> Any:
    p = Path(path)
    if not p.exists():
        raise ConfigError(f"config file '{p}' does not exist. Fix: pass the path of a YAML file.")
    if not p.is_file():
        raise ConfigError(f"config path '{p}' is not a file. Fix: pass the path of a YAML file.")
    try:
        return yaml.safe_load(p.read_text(encoding="utf-8"))
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark is not None else ""
        raise ConfigError(f"config file '{p}' is not valid YAML{where}. Fix: correct the syntax.") from None
    except UnicodeDecodeError:
        raise ConfigError(f"config file '{p}' is not UTF-8 text. Fix: save it as UTF-8.") from None


def load_config(path: str | Path | None, model: type[T], overrides: dict[str, Any] | None = None) -> T:
    """Load ``model`` from a YAML file (or defaults when ``path`` is None), then apply overrides."""
    data: dict[str, Any] = {}
    if path is not None:
        loaded = read_yaml(path)
        if loaded is not None and not isinstance(loaded, dict):
            raise ConfigError(f"config file '{path}' must hold a mapping of keys to values.")
        data = dict(loaded or {})
    for key, value in (overrides or {}).items():
        if value is not None:
            data[key] = value
    return validate_config(data, model, source=str(path) if path else "config")


def apply_dotted(base: dict, overrides: dict[str, Any], *, source: str = "overrides") -> dict:
    """A deep copy of ``base`` with dotted keys set (``{"training.max_steps": 60, "lora.r": 8}``).

    A missing or null intermediate becomes a mapping (``data.replay.fraction`` on ``replay: null``);
    an intermediate that holds a value is a ConfigError naming the key, never silently replaced.
    Whether the result is a valid config is the config model's to say.
    """
    import copy

    out = copy.deepcopy(base)
    for path, value in overrides.items():
        node = out
        *parents, leaf = str(path).split(".")
        walked: list[str] = []
        for p in parents:
            walked.append(p)
            nxt = node.get(p)
            if nxt is None:
                nxt = node[p] = {}
            elif not isinstance(nxt, dict):
                raise ConfigError(f"{source}: '{path}' goes through '{'.'.join(walked)}', which holds a {type(nxt).__name__}, not a section.",
                                  fix="override that key itself, or a key of a section.")
            node = nxt
        node[leaf] = value
    return out


def config_hash(cfg: BaseModel) -> str:
    """Stable content hash of a resolved config (for manifests and caches)."""
    payload = json.dumps(cfg.model_dump(mode="json"), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(payload.encode()).hexdigest()
