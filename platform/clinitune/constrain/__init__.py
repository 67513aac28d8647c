"""Constrained decoding: what a model may generate, enforced token by token.

* ``Constraint`` / ``ConstraintState`` (``clinitune.constrain.hook``): the one hook every decoder
  uses — transformers' ``generate`` in evaluation (``ConstraintLogitsProcessor``) and serving's
  batch decoder (``mask_logits``).
* Terminology (``clinitune.constrain.codes``): codes must exist in a code system's table
  (``clinitune.terminology.systems``: ``icd10cm`` built in, ``file:PATH`` for your own), e.g.
  ``code_constraint("icd10cm", tok, eos)``.
* ``build_constraint(spec, tokenizer, eos_ids)``: a constraint from its configured name.
"""

from __future__ import annotations

from clinitune._lazy import lazy_getattr

_EXPORTS = {
    "Constraint": "clinitune.constrain.hook",
    "ConstraintState": "clinitune.constrain.hook",
    "ConstraintLogitsProcessor": "clinitune.constrain.hook",
    "mask_logits": "clinitune.constrain.hook",
    "CodeConstraint": "clinitune.constrain.codes",
    "code_constraint": "clinitune.constrain.codes",
    "build_constraint": "clinitune.constrain.registry",
    "codes_spec": "clinitune.constrain.registry",
    "register_kind": "clinitune.constrain.registry",
}
__all__ = sorted(_EXPORTS)

__getattr__ = lazy_getattr(__name__, _EXPORTS)
