"""Chat template, label masking and packing on a real (tiny, offline) tokenizer."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from clinitune.data.tokenize import Tokenize, pack_first_fit
from clinitune.models.chat import IGNORE_INDEX, load_tokenizer, render_segments


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    from clinitune.models.tiny import create_tiny_model

    return str(create_tiny_model(tmp_path_factory.mktemp("m") / "tiny", hidden_size=32, num_layers=1))


def _batch(*conversations, status="ok"):
    return pd.DataFrame({"example_id": [f"e{i}" for i in range(len(conversations))],
                         "messages": [json.dumps(c) for c in conversations], "status": [status] * len(conversations)})


def _targets(row, tok):
    return tok.decode([t for t, l in zip(row["input_ids"], row["labels"]) if l != IGNORE_INDEX])


CONV = [{"role": "system", "content": "You code."}, {"role": "user", "content": "Note: HTN."},
        {"role": "assistant", "content": "I10"}]


def test_only_the_assistant_turn_is_trained(model_dir):
    tok = load_tokenizer(model_dir)
    row = Tokenize(model_dir, 256)(_batch(CONV)).iloc[0]
    assert row["status"] == "ok"
    assert tok.decode(row["input_ids"]) == tok.apply_chat_template(CONV, tokenize=False)
    assert _targets(row, tok) == "I10<|im_end|>\n"
    assert row["num_target_tokens"] == sum(1 for x in row["labels"][1:] if x != IGNORE_INDEX)
    assert list(row["lengths"]) == [len(row["input_ids"])]


def test_multi_turn_masks_every_user_turn(model_dir):
    tok = load_tokenizer(model_dir)
    conv = CONV + [{"role": "user", "content": "And names?"}, {"role": "assistant", "content": "Hypertension"}]
    row = Tokenize(model_dir, 512)(_batch(conv)).iloc[0]
    assert _targets(row, tok) == "I10<|im_end|>\nHypertension<|im_end|>\n"


def test_overlong_examples_are_dropped_or_truncated(model_dir):
    long = [{"role": "user", "content": "word " * 200}, {"role": "assistant", "content": "I10"}]
    dropped = Tokenize(model_dir, 64, overlong="drop")(_batch(long, CONV))
    assert sorted(dropped["status"]) == ["ok", "too_long"]
    assert len(dropped[dropped.status == "too_long"].iloc[0]["input_ids"]) == 0
    cut = Tokenize(model_dir, 64, overlong="truncate")(_batch(long))
    assert cut.iloc[0]["status"] == "no_target"  # the answer was cut off: not trained on
    earlier = Tokenize(model_dir, 64, overlong="truncate")(_batch(CONV))
    assert earlier.iloc[0]["status"] == "ok"


def test_rows_the_builder_rejected_pass_through_with_their_reason(model_dir):
    out = Tokenize(model_dir, 256)(pd.DataFrame({"example_id": ["a"], "messages": [""], "status": ["no_label"]}))
    assert out.iloc[0]["status"] == "no_label" and out.iloc[0]["num_examples"] == 1


def test_packing_fills_sequences_without_crossing_examples(model_dir):
    convs = [[{"role": "user", "content": f"Note {i}"}, {"role": "assistant", "content": "I10"}] for i in range(6)]
    plain = Tokenize(model_dir, 128)(_batch(*convs))
    packed = Tokenize(model_dir, 128, packing=True)(_batch(*convs))
    assert len(packed) < len(plain)
    assert packed["num_examples"].sum() == 6 and packed["num_target_tokens"].sum() == plain["num_target_tokens"].sum()
    for _, row in packed.iterrows():
        assert len(row["input_ids"]) <= 128 and sum(row["lengths"]) == len(row["input_ids"])
        starts = [sum(row["lengths"][:k]) for k in range(len(row["lengths"]))]
        assert all(row["labels"][s] == IGNORE_INDEX for s in starts)  # each example starts with a prompt token


def test_pack_first_fit_is_deterministic_and_respects_capacity():
    bins = pack_first_fit([60, 50, 40, 30, 20, 10], 100)
    assert bins == pack_first_fit([60, 50, 40, 30, 20, 10], 100)
    assert sorted(i for b in bins for i in b) == list(range(6))
    assert all(sum([60, 50, 40, 30, 20, 10][i] for i in b) <= 100 for b in bins)
    assert len(bins) == 3


def test_templates_that_rewrite_history_are_detected(model_dir):
    tok = load_tokenizer(model_dir)
    original = tok.chat_template
    try:
        # a template that only renders the last user turn: prefixes are not stable
        tok.chat_template = "{{ messages[-1]['role'] }}: {{ messages[-1]['content'] }}\n"
        assert render_segments(tok, CONV) is None
    finally:
        tok.chat_template = original
