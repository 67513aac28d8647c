"""The config helpers every job shares."""

from __future__ import annotations

import pytest

from clinitune.config import apply_dotted
from clinitune.errors import ConfigError


def test_apply_dotted_sets_nested_keys_on_a_copy():
    base = {"training": {"max_steps": 10}, "data": {"replay": None}}
    out = apply_dotted(base, {"training.max_steps": 60, "data.replay.fraction": 0.1, "lora.r": 8})
    assert out == {"training": {"max_steps": 60}, "data": {"replay": {"fraction": 0.1}}, "lora": {"r": 8}}
    assert base == {"training": {"max_steps": 10}, "data": {"replay": None}}


def test_apply_dotted_never_replaces_a_value_with_a_section():
    with pytest.raises(ConfigError, match=r"finetune_overrides: 'model.name' goes through 'model', which holds a str"):
        apply_dotted({"model": "tiny"}, {"model.name": "x"}, source="finetune_overrides")
