"""The constraint hook: one interface between "what may be generated" and every decoder.

A :class:`Constraint` is compiled once for a tokenizer (immutable, shared by requests and
threads). Each generated sequence gets its own :class:`ConstraintState` from
:meth:`Constraint.begin`; a decoder, before it picks each token, asks the state which tokens are
allowed and masks the others to ``-inf`` (:func:`mask_logits`), then feeds the chosen token back
(:meth:`ConstraintState.advance`). Two decoders use it:

* evaluation, through transformers' ``generate`` (:class:`ConstraintLogitsProcessor`, a standard
  ``LogitsProcessor``);
* serving's own batch decoder (``clinitune.serve.decoding``), which calls :func:`mask_logits`
  with its rows' states.

So a new kind of constraint (ICD-10 codes today: ``clinitune.constrain.codes``; a JSON schema
next) implements these two small classes and works in both. Masking is applied to the logits
before temperature and nucleus sampling, so sampled and greedy decoding obey it alike.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Sequence

import torch

#: what :meth:`ConstraintState.allowed` returns: a bool mask over the vocabulary, or the allowed
#: token ids (int64), or None when every token is allowed at this step
Allowed = "torch.Tensor | None"


class ConstraintState(ABC):
    """One sequence's progress through a constraint."""

    @abstractmethod
    def allowed(self) -> torch.Tensor | None:
        """Tokens that may come next: a bool mask (vocabulary-sized) or int64 token ids; None = any."""

    @abstractmethod
    def advance(self, token: int) -> None:
        """Record the token that was generated (an end-of-sequence token ends the constraint)."""

    def holdback(self) -> int:
        """Characters at the end of the text so far that :meth:`Constraint.complete` may still remove
        (a streaming decoder holds them back until they are settled)."""
        return 0


class Constraint(ABC):
    """A compiled constraint for one tokenizer; thread-safe and shared."""

    #: short name for logs and reports (e.g. ``codes:icd10cm``)
    name: str = "constraint"

    @abstractmethod
    def begin(self) -> ConstraintState:
        """A fresh state for one new sequence."""

    def complete(self, text: str) -> str:
        """The final text of a sequence that stopped (end token or length limit): drops an unfinished
        constrained span a length limit cut off. The default keeps the text."""
        return text


def mask_logits(logits: torch.Tensor, states: Sequence[ConstraintState | None]) -> torch.Tensor:
    """Set the logits of disallowed tokens to ``-inf`` in place, row by row; returns ``logits``.

    ``logits`` is ``(rows, vocab)``; ``states[i]`` constrains row ``i`` (None: unconstrained). A
    model whose output layer is wider than the tokenizer (padded vocabularies) never gets the
    extra columns while a constraint is active. A row whose state allows nothing is left as it is
    rather than made undecodable (cannot happen with byte-level tokenizers, which can spell any
    character).
    """
    width = logits.shape[-1]
    for i, state in enumerate(states):
        if state is None:
            continue
        allowed = state.allowed()
        if allowed is None:
            continue
        row = logits[i]
        if allowed.dtype == torch.bool:
            keep = torch.zeros(width, dtype=torch.bool, device=row.device)
            n = min(width, allowed.shape[0])
            keep[:n] = allowed[:n].to(row.device)
        else:
            ids = allowed[allowed < width].to(row.device)
            keep = torch.zeros(width, dtype=torch.bool, device=row.device)
            keep[ids] = True
        if bool(keep.any()):
            row.masked_fill_(~keep, float("-inf"))
    return logits


class ConstraintLogitsProcessor:
    """A transformers ``LogitsProcessor`` applying one state per batch row.

    ``generate`` passes the whole sequence (prompt + generated) each step; the processor feeds each
    row's state the tokens generated since the previous step (``prompt_width`` is the padded
    prompt length, the same for every row). Greedy or sampled decoding only (beam search reorders
    rows, which this processor does not follow).
    """

    def __init__(self, states: Sequence[ConstraintState | None], prompt_width: int):
        self.states = list(states)
        self.prompt_width = int(prompt_width)
        self._fed = [0] * len(self.states)

    def __call__(self, input_ids: torch.Tensor, scores: torch.Tensor) -> torch.Tensor:
        generated = input_ids[:, self.prompt_width:]
        for i, state in enumerate(self.states):
            if state is None:
                continue
            row = generated[i].tolist()
            for token in row[self._fed[i]:]:
                state.advance(int(token))
            self._fed[i] = len(row)
        return mask_logits(scores, self.states)


__all__ = ["Allowed", "Constraint", "ConstraintLogitsProcessor", "ConstraintState", "mask_logits"]
