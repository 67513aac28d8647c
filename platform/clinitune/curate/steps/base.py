"""Curation steps: small callables over pandas batches, registered by name.

A step declares the columns it ``requires`` and the columns it ``adds``; the pipeline checks the
chain before any data moves. Steps score first and filter second: a score column stays in the
data for audit, and a filter only flips ``status`` to ``filtered`` with a ``reason`` naming the
filter, so the manifest can count it. Steps touch only rows whose ``status`` is ``ok``.

Register a step with ``@register_step("name")``; a YAML config lists steps by name with options::

    steps:
      - name: normalize_text
      - name: quality_filter
        options: {min_chars: 40}
"""

from __future__ import annotations

from typing import Any, ClassVar

import pandas as pd

from clinitune.errors import ConfigError
from clinitune.named import registrar
from clinitune.schema import REASON_COLUMN, STATUS_COLUMN, STATUS_OK

_REGISTRY: dict[str, type["Step"]] = {}
# Modules whose import registers the built-in steps.
BUILTIN_STEP_MODULES = (
    "clinitune.curate.steps.clean",
    "clinitune.curate.steps.quality",
    "clinitune.curate.steps.deid",
    "clinitune.curate.steps.pseudonym",
    "clinitune.curate.boilerplate",
    "clinitune.curate.split",
)


class Step:
    """Base class for a row-local curation step (``__call__(batch) -> batch``).

    Subclasses set ``name``, ``requires`` and ``adds``, accept their options as keyword
    arguments in ``__init__`` (unknown options are a ConfigError), and implement ``__call__``.
    Steps must be picklable: Ray Data ships them to workers, constructing them once per actor.
    """

    name: ClassVar[str] = ""
    requires: ClassVar[tuple[str, ...]] = ()
    adds: ClassVar[tuple[str, ...]] = ()

    def __call__(self, batch: pd.DataFrame) -> pd.DataFrame:  # pragma: no cover - abstract
        raise NotImplementedError

    @staticmethod
    def alive(batch: pd.DataFrame) -> pd.Series:
        """Boolean mask of rows still in play."""
        return batch[STATUS_COLUMN] == STATUS_OK

    @staticmethod
    def mark(batch: pd.DataFrame, mask: pd.Series, status: str, reason: str) -> None:
        """Flip ``status``/``reason`` for ``mask`` rows that are still alive (in place)."""
        m = mask & (batch[STATUS_COLUMN] == STATUS_OK)
        batch.loc[m, STATUS_COLUMN] = status
        batch.loc[m, REASON_COLUMN] = reason


register_step = registrar(_REGISTRY, "curation step")


def registered_steps() -> dict[str, type[Step]]:
    _import_builtin_steps()
    return dict(_REGISTRY)


def build_step(name: str, options: dict[str, Any] | None = None) -> Step:
    """Instantiate a registered step; unknown names/options raise a one-line ConfigError."""
    steps = registered_steps()
    if name not in steps:
        raise ConfigError(
            f"unknown curation step '{name}'. Fix: use one of: {', '.join(sorted(steps))}."
        )
    try:
        return steps[name](**(options or {}))
    except TypeError as err:
        raise ConfigError(f"curation step '{name}': bad options ({err}). Fix: check the step's documented options.") from None
    except ValueError as err:
        raise ConfigError(f"curation step '{name}': {err}") from None


def _import_builtin_steps() -> None:
    # Imported lazily so that importing the base class stays cheap and cycle-free.
    import importlib

    for mod in BUILTIN_STEP_MODULES:
        importlib.import_module(mod)
