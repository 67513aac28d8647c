"""Constraint specs: the string a config or a request names a constraint by, and its compiler.

A spec is ``<kind>:<argument>``; ``codes:icd10cm`` restricts codes to ICD-10-CM and
``json:<schema>`` makes the output JSON valid under a schema (``response_format``;
``clinitune.constrain.json_schema``). Kinds are registered here (``register_kind``) and reach
evaluation and serving through the same hook.
"""

from __future__ import annotations

from typing import Callable, Iterable

from clinitune.constrain.hook import Constraint
from clinitune.errors import ConfigError

Compiler = Callable[[str, object, Iterable[int]], Constraint]
_KINDS: dict[str, Compiler] = {}


def register_kind(kind: str, compiler: Compiler) -> None:
    """``compiler(argument, tokenizer, eos_ids) -> Constraint`` for specs ``<kind>:<argument>``."""
    _KINDS[kind] = compiler


def _codes(argument: str, tokenizer, eos_ids: Iterable[int]) -> Constraint:
    from clinitune.constrain.codes import code_constraint

    return code_constraint(argument, tokenizer, eos_ids)


register_kind("codes", _codes)


def _json(argument: str, tokenizer, eos_ids: Iterable[int]) -> Constraint:
    from clinitune.constrain.json_schema import json_constraint

    return json_constraint(argument, tokenizer, eos_ids)


register_kind("json", _json)


def json_spec(schema: dict | None) -> str:
    """The spec of a JSON-output constraint: ``json:<schema>`` (None: any JSON object)."""
    from clinitune.constrain.json_schema import canonical

    return f"json:{canonical(schema)}"


def codes_spec(code_system: str | None) -> str:
    """The spec of a code-system constraint ('' for none)."""
    return f"codes:{code_system}" if code_system else ""


def build_constraint(spec: str, tokenizer, eos_ids: Iterable[int]) -> Constraint | None:
    """The compiled constraint for ``spec`` ('' = none); an unknown kind is a ConfigError."""
    if not spec:
        return None
    kind, _, argument = spec.partition(":")
    if kind not in _KINDS or not argument:
        raise ConfigError(f"constraint {spec!r} is not a known constraint.",
                          fix=f"use <kind>:<argument> with kind one of: {', '.join(sorted(_KINDS))} (e.g. codes:icd10cm).")
    return _KINDS[kind](argument, tokenizer, eos_ids)
