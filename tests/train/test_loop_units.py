"""Pieces of the worker loop that need no Ray: batching, step planning, config, CLI wiring."""

from __future__ import annotations

import numpy as np
import torch

from clinitune.train.loop import IGNORE_INDEX, collate, plan_steps


def test_collate_pads_and_restarts_positions_per_example():
    batch = {
        "input_ids": [np.array([5, 6, 7, 8, 9]), np.array([1, 2, 3])],
        "labels": [np.array([-100, -100, 7, 8, -100]), np.array([-100, 2, 3])],
        "lengths": [np.array([3, 2]), np.array([3])],  # row 0 packs two examples
    }
    b = collate(batch, pad_id=0, device=torch.device("cpu"), multiple_of=4)
    assert b["input_ids"].tolist() == [[5, 6, 7, 8, 9, 0, 0, 0], [1, 2, 3, 0, 0, 0, 0, 0]]
    assert b["position_ids"].tolist() == [[0, 1, 2, 0, 1, 0, 1, 2], [0, 1, 2, 0, 1, 2, 3, 4]]
    assert b["labels"][0, 5:].tolist() == [IGNORE_INDEX] * 3
    # the second example's first label (8) is masked: example one's last token must not predict it
    assert b["labels"][0, :5].tolist() == [-100, -100, 7, IGNORE_INDEX, -100]
    assert b["tokens"] == 8 and b["targets"] == 3


def test_unpacked_rows_keep_counting_positions_through_the_padding():
    """No packed row: positions run 0..width-1, so transformers stays on its causal path; the
    real tokens' logits equal those of the unpadded sequence."""
    from transformers import LlamaConfig, LlamaForCausalLM

    batch = {"input_ids": [np.array([5, 6, 7, 8]), np.array([1, 2])],
             "labels": [np.array([-100, 6, 7, 8]), np.array([-100, 2])], "lengths": [np.array([4]), np.array([2])]}
    b = collate(batch, pad_id=0, device=torch.device("cpu"))
    assert b["position_ids"].tolist() == [[0, 1, 2, 3], [0, 1, 2, 3]]
    assert b["labels"][1].tolist() == [-100, 2, IGNORE_INDEX, IGNORE_INDEX] and b["tokens"] == 6
    torch.manual_seed(0)
    model = LlamaForCausalLM(LlamaConfig(vocab_size=64, hidden_size=32, intermediate_size=64, num_hidden_layers=1,
                                         num_attention_heads=4, num_key_value_heads=2)).eval()
    with torch.no_grad():
        padded = model(input_ids=b["input_ids"], position_ids=b["position_ids"], use_cache=False).logits
        alone = model(input_ids=torch.tensor([[1, 2]]), use_cache=False).logits
    assert torch.allclose(padded[1, :2], alone[0], atol=1e-5)


def test_packed_position_ids_keep_examples_apart_in_attention():
    """transformers builds a block-diagonal mask from restarting position ids (attention_mask=None)."""
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(0)
    model = LlamaForCausalLM(LlamaConfig(vocab_size=64, hidden_size=32, intermediate_size=64, num_hidden_layers=1,
                                         num_attention_heads=4, num_key_value_heads=2)).eval()
    a, b = torch.tensor([[3, 4, 5]]), torch.tensor([[7, 8]])
    packed = torch.cat([a, b], dim=1)
    pos = torch.tensor([[0, 1, 2, 0, 1]])
    with torch.no_grad():
        together = model(input_ids=packed, position_ids=pos, use_cache=False).logits  # as in training
        alone = model(input_ids=b, use_cache=False).logits
    assert torch.allclose(together[0, 3:], alone[0], atol=1e-5)


def test_plan_steps_is_equal_on_every_worker(make_cfg):
    cfg = make_cfg(training__batch_size=4, training__grad_accum=2, training__epochs=3)
    assert plan_steps(cfg, 70, 2) == (8, 4, 12)  # 35 rows per worker -> 8 micro-batches -> 4 steps
    assert plan_steps(make_cfg(training__max_steps=5, training__epochs=3), 64, 1)[2] == 5


def test_run_name_is_the_config_hash_unless_set(make_cfg):
    from clinitune.train.trainer import run_name_for

    a, b = make_cfg(), make_cfg()
    assert run_name_for(a) == run_name_for(b) and run_name_for(a).startswith("ft-")
    assert run_name_for(make_cfg(training__learning_rate=1e-4)) != run_name_for(a)
    assert run_name_for(make_cfg(checkpoint__run_name="mine")) == "mine"


def test_cli_registers_the_training_commands():
    from typer.testing import CliRunner

    from clinitune.cli.main import app

    r = CliRunner().invoke(app, ["--help"])
    for cmd in ("models", "data", "train", "tune"):
        assert cmd in r.output
    r = CliRunner().invoke(app, ["data", "tasks"])
    assert "icd10_coding" in r.output and "instructions" in r.output


def test_cli_train_bad_config_is_one_line_exit_2(tmp_path):
    from clinitune.cli.main import main

    bad = tmp_path / "ft.yaml"
    bad.write_text("data: {source: /x}\ntraining: {lerning_rate: 0.1}\n")
    assert main(["train", "--config", str(bad)]) == 2
