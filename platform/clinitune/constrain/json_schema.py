"""JSON output through the constraint hook: ``response_format`` ``json_object`` and ``json_schema``.

The schema is compiled to a token-level grammar by ``llguidance`` (Microsoft's low-level guidance
library, the structured-output engine behind vLLM's and llama.cpp's grammars): it reads the Hugging
Face tokenizer offline, compiles lazily (no vocabulary-sized precomputation per schema) and answers
"which tokens may come next" as a bitmask in microseconds. Each sequence gets its own matcher; the
hook (:mod:`clinitune.constrain.hook`) turns the bitmask into the logits mask, in serving's
decoder and in transformers' ``generate`` alike.

Whitespace is fixed (``", "`` between items, ``": "`` after keys, no newlines) so a small model
cannot spend its token budget on indentation. A schema llguidance cannot compile is a
:class:`SchemaError` naming the problem (serving answers it with a 400 on ``response_format``).
"""

from __future__ import annotations

import hashlib
import json
import threading
from typing import Iterable

import torch

from clinitune.constrain.hook import Constraint, ConstraintState

GRAMMAR_DEFAULTS = {"whitespace_flexible": False, "item_separator": ", ", "key_separator": ": "}
ANY_OBJECT = {"type": "object"}


class SchemaError(ValueError):
    """The JSON schema cannot be compiled (the message names the problem, not the data)."""


def canonical(schema: dict | None) -> str:
    """The schema as the argument of a ``json:`` constraint spec (sorted keys, compact)."""
    return json.dumps(schema if schema is not None else ANY_OBJECT, sort_keys=True, separators=(",", ":"))


def compile_grammar(schema: dict | None) -> str:
    """The llguidance grammar of ``schema`` (None: any JSON object); :class:`SchemaError` when it cannot compile."""
    import llguidance

    if schema is not None and not isinstance(schema, dict):
        raise SchemaError("the schema must be a JSON object")
    try:
        grammar = llguidance.LLMatcher.grammar_from_json_schema(schema if schema is not None else ANY_OBJECT,
                                                               defaults=GRAMMAR_DEFAULTS)
    except (ValueError, TypeError, RuntimeError) as err:
        raise SchemaError(str(err).splitlines()[0][:300] if str(err) else type(err).__name__) from None
    problem = llguidance.LLMatcher.validate_grammar(grammar)
    if problem:
        raise SchemaError(str(problem).splitlines()[0][:300])
    return grammar


class JsonSchemaConstraint(Constraint):
    """Output that parses as JSON valid under one schema, for one tokenizer."""

    def __init__(self, schema: dict | None, tokenizer, eos_ids: Iterable[int]):
        import llguidance.hf

        self.grammar = compile_grammar(schema)
        self.name = f"json:{hashlib.sha256(canonical(schema).encode()).hexdigest()[:12]}"
        self.ll = llguidance.hf.from_tokenizer(tokenizer)
        self.vocab = int(self.ll.vocab_size)
        self.eos = frozenset(int(e) for e in eos_ids)

    def begin(self) -> "JsonState":
        import llguidance

        return JsonState(self, llguidance.LLMatcher(self.ll, self.grammar))


class JsonState(ConstraintState):
    def __init__(self, constraint: JsonSchemaConstraint, matcher):
        import llguidance.torch as lt

        self.c = constraint
        self.m = matcher
        self.done = False
        self._bits = lt.allocate_token_bitmask(1, constraint.vocab)
        self._fill = lt.fill_next_token_bitmask

    def allowed(self) -> torch.Tensor | None:
        if self.done or self.m.is_error():
            return None
        self._fill(self.m, self._bits, 0)
        words = self._bits[0].to(torch.int64) & 0xFFFFFFFF
        shifts = torch.arange(32, dtype=torch.int64)
        mask = ((words.unsqueeze(1) >> shifts) & 1).bool().reshape(-1)[: self.c.vocab]
        if self.m.is_stopped() or self.m.is_accepting():  # the document is complete: any end token may close it
            for e in self.c.eos:
                if e < self.c.vocab:
                    mask[e] = True
        return mask

    def advance(self, token: int) -> None:
        if self.done:
            return
        if token in self.c.eos:
            self.done = True
            return
        if not self.m.is_stopped():
            self.m.consume_token(int(token))


_CACHE: dict[tuple, JsonSchemaConstraint] = {}
_LOCK = threading.Lock()


def json_constraint(argument: str, tokenizer, eos_ids: Iterable[int]) -> JsonSchemaConstraint:
    """The compiled constraint of spec ``json:<canonical schema>`` (cached per schema and tokenizer)."""
    try:
        schema = json.loads(argument) if argument else None
    except json.JSONDecodeError:
        raise SchemaError("the schema is not valid JSON") from None
    eos = tuple(sorted(int(e) for e in eos_ids))
    key = (canonical(schema), getattr(tokenizer, "name_or_path", ""), len(tokenizer), eos)
    with _LOCK:
        found = _CACHE.get(key)
        if found is None:
            if len(_CACHE) >= 64:
                _CACHE.clear()
            found = _CACHE[key] = JsonSchemaConstraint(schema, tokenizer, eos)
        return found


__all__ = ["JsonSchemaConstraint", "JsonState", "SchemaError", "canonical", "compile_grammar", "json_constraint"]
