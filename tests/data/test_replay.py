"""Replay against forgetting: prompt loading, even interleaving, bad sources, and a real build with self answers."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from clinitune.data.config import ReplayConfig
from clinitune.data.replay import BUILTIN, MixReplay, load_replay_prompts
from clinitune.errors import ConfigError


def _task_batch(n: int) -> pd.DataFrame:
    return pd.DataFrame({"example_id": [f"note-{i:03d}" for i in range(n)],
                         "messages": [json.dumps([{"role": "user", "content": f"q{i}"}, {"role": "assistant", "content": "I10"}])
                                      for i in range(n)],
                         "status": ["ok"] * n})


def _replay(n: int) -> pd.DataFrame:
    return pd.DataFrame({"example_id": [f"replay-{i:05d}" for i in range(n)], "messages": ["[]"] * n, "status": ["ok"] * n})


def test_builtin_prompts_are_user_turns_disjoint_from_the_forgetting_probes():
    from clinitune.evaluate.probes import load_probes

    convs = load_replay_prompts(ReplayConfig())
    assert len(convs) >= 90 and all(c[-1]["role"] == "user" for c in convs)
    probes = {p["prompt"].strip().lower() for p in load_probes()}
    assert not probes & {c[-1]["content"].strip().lower() for c in convs}, "replay must not train on the probes"
    assert len(load_replay_prompts(ReplayConfig(max_prompts=5))) == 5


@pytest.mark.parametrize("n,fraction", [(240, 0.15), (10, 0.2), (3, 0.5), (1, 0.1)])
def test_mix_interleaves_the_fraction_evenly_and_keeps_every_task_row(n, fraction):
    out = MixReplay(_replay(40), fraction)(_task_batch(n))
    is_replay = out["example_id"].str.startswith("replay-")
    k = int(is_replay.sum())
    assert k == max(1, round(n * fraction / (1 - fraction)))
    assert list(out.loc[~is_replay, "example_id"]) == [f"note-{i:03d}" for i in range(n)]
    assert out["example_id"].is_unique
    if n >= 10:  # spread through the batch, not piled at one end: no gap much longer than an even share
        edges = [-1, *out.index[is_replay], len(out)]
        assert max(b - a for a, b in zip(edges, edges[1:])) <= 2 * len(out) / (k + 1) + 1


def test_mix_is_deterministic_and_batches_draw_different_replay_rows():
    mix = MixReplay(_replay(50), 0.2)
    a, b = _task_batch(20), _task_batch(20).assign(example_id=lambda d: "x" + d["example_id"])
    pd.testing.assert_frame_equal(mix(a), mix(a))
    ra = set(mix(a)["example_id"].str.split("@").str[0]) - set(a["example_id"])
    rb = set(mix(b)["example_id"].str.split("@").str[0]) - set(b["example_id"])
    assert ra != rb


def test_bad_replay_sources_are_one_line_config_errors(tmp_path):
    with pytest.raises(ConfigError, match="is not a file"):
        load_replay_prompts(ReplayConfig(source=str(tmp_path / "none.jsonl")))
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"messages": [{"role": "user", "content": "hi"}]}\nnot json\n')
    with pytest.raises(ConfigError, match="line 2"):
        load_replay_prompts(ReplayConfig(source=str(bad)))
    only_user = tmp_path / "u.jsonl"
    only_user.write_text('{"messages": [{"role": "user", "content": "hi"}]}\n')
    with pytest.raises(ConfigError, match="no usable conversation"):
        load_replay_prompts(ReplayConfig(source=str(only_user), answers="given"))


@pytest.mark.ray
def test_build_mixes_replay_into_train_only_and_keys_the_cache(ray_session, tmp_path, write_toy_curated):
    """Given answers: the train split holds task and replay rows, validation only task rows."""
    import pyarrow.parquet as pq

    from clinitune.data.build import build_dataset, load_manifest
    from clinitune.data.config import DataConfig
    from clinitune.models.tiny import create_tiny_model

    model = create_tiny_model(tmp_path / "tiny", hidden_size=32, num_layers=1)
    curated = write_toy_curated(tmp_path / "cur", n_train=20, n_validation=4)
    chat = tmp_path / "general.jsonl"
    chat.write_text("".join(json.dumps({"messages": [{"role": "user", "content": f"Name a colour ({i})."},
                                                     {"role": "assistant", "content": "Blue."}]}) + "\n" for i in range(6)))
    cfg = DataConfig(source=str(curated), cache_dir=str(tmp_path / "cache"), max_seq_len=256,
                     replay=ReplayConfig(source=str(chat), answers="given", fraction=0.2))
    out = build_dataset(cfg, model)
    m = load_manifest(out)
    assert m["replay"]["answers"] == "given" and m["replay"]["conversations"] == 6
    ids = [e for row in pq.read_table(out / "train").column("example_ids").to_pylist() for e in row]
    replay_ids = [e for e in ids if e.startswith("replay-")]
    assert len(replay_ids) == round(20 * 0.2 / 0.8) and len(ids) == 20 + len(replay_ids)
    val = [e for row in pq.read_table(out / "validation").column("example_ids").to_pylist() for e in row]
    assert val and not any(e.startswith("replay-") for e in val)
    # the same config is a cache hit; another replay fraction is another dataset
    assert build_dataset(cfg, model) == out
    assert build_dataset(cfg.model_copy(update={"replay": cfg.replay.model_copy(update={"fraction": 0.3})}), model) != out


@pytest.mark.ray
def test_self_answers_that_are_all_empty_are_a_clear_error(ray_session, tmp_path):
    """A random-init model answers with special tokens only: nothing to replay, said in one line."""
    from clinitune.data.replay import replay_examples
    from clinitune.errors import UserError
    from clinitune.models.tiny import create_tiny_model

    model = create_tiny_model(tmp_path / "tiny", hidden_size=32, num_layers=1)
    with pytest.raises(UserError, match="answered none of the 3 replay prompts") as err:
        replay_examples(ReplayConfig(max_prompts=3, max_new_tokens=8), model)
    assert "\n" not in str(err.value)
