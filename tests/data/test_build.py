"""build_dataset on the shared local Ray: manifest counts, content-hash cache, bad input."""

from __future__ import annotations

import json
import shutil

import pandas as pd
import pytest

from clinitune.errors import UserError


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    from clinitune.models.tiny import create_tiny_model

    return str(create_tiny_model(tmp_path_factory.mktemp("m") / "tiny", hidden_size=32, num_layers=1))


@pytest.fixture(scope="module")
def curated(tmp_path_factory, write_toy_curated):
    d = write_toy_curated(tmp_path_factory.mktemp("c") / "cur", n_train=24, n_validation=6)
    # two rows the builder must count, not lose: no labels, empty text
    extra = pd.DataFrame([
        {"note_id": "nolabel", "patient_id": "p", "text": "Seen today.", "note_type": "x", "note_date": "2024-01-01",
         "source": "t", "attributes": "{}", "quality_score": 1.0},
        {"note_id": "empty", "patient_id": "p", "text": " ", "note_type": "x", "note_date": "2024-01-01",
         "source": "t", "attributes": '{"icd10": ["I10"]}', "quality_score": 1.0},
    ])
    extra.to_parquet(d / "train" / "part-1.parquet", index=False)
    return d


def _cfg(source, cache, **kw):
    from clinitune.data.config import DataConfig

    return DataConfig(source=str(source), cache_dir=str(cache), max_seq_len=256, **kw)


@pytest.mark.ray
def test_build_counts_every_row_and_is_cached_by_content(ray_session, model_dir, curated, tmp_path):
    import pyarrow.parquet as pq

    from clinitune.data.build import build_dataset, load_manifest, load_split

    out = build_dataset(_cfg(curated, tmp_path), model_dir)
    m = load_manifest(out)
    train = m["splits"]["train"]
    assert train["input_rows"] == 26 and train["examples"] == 24
    assert train["dropped"] == {"empty_text": 1, "no_label": 1}
    assert m["splits"]["validation"]["examples"] == 6
    assert m["source"]["manifest_sha256"] and m["dataset_hash"] == out.name
    assert 0 < train["target_tokens"] < train["tokens"] and train["max_tokens"] <= 256
    # no note text anywhere in the output except token ids: ids are note ids
    table = pq.read_table(next((out / "train").glob("*.parquet")))
    assert set(table.column_names) >= {"example_ids", "status", "input_ids", "labels", "lengths"}
    assert "text" not in table.column_names and "messages" not in table.column_names
    rows = load_split(out, "train", in_memory_below=10**9).take_all()
    assert len(rows) == 24 and rows[0]["input_ids"].dtype.kind == "i"
    assert len(load_split(out, "train").take_all()) == 24  # the streaming path reads the same rows

    mtimes = {p: p.stat().st_mtime_ns for p in out.rglob("*.parquet")}
    assert build_dataset(_cfg(curated, tmp_path), model_dir) == out  # cache hit: nothing re-tokenised
    assert {p: p.stat().st_mtime_ns for p in out.rglob("*.parquet")} == mtimes
    packed = build_dataset(_cfg(curated, tmp_path, packing=True), model_dir)
    assert packed != out  # a different setting is a different dataset
    assert load_manifest(packed)["splits"]["train"]["examples"] == 24


@pytest.mark.ray
def test_bring_your_own_chat_jsonl(ray_session, model_dir, tmp_path):
    from clinitune.data.build import build_dataset, load_manifest
    from clinitune.data.config import TaskConfig

    src = tmp_path / "chat"
    src.mkdir()
    rows = [{"messages": [{"role": "user", "content": f"Question {i}?"}, {"role": "assistant", "content": "Answer."}]}
            for i in range(5)] + [{"messages": [{"role": "user", "content": "no reply"}]}]
    (src / "train.jsonl").write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    out = build_dataset(_cfg(src, tmp_path / "cache", task=TaskConfig(name="instructions")), model_dir)
    m = load_manifest(out)
    assert m["splits"]["train"]["examples"] == 5 and m["splits"]["train"]["dropped"] == {"bad_messages": 1}
    assert "validation" not in m["splits"] and m["source"]["content_hash"]


def test_bad_sources_fail_before_any_tokenising(model_dir, curated, tmp_path):
    from clinitune.data.build import build_dataset

    with pytest.raises(UserError, match="does not exist"):
        build_dataset(_cfg(tmp_path / "missing", tmp_path), model_dir)
    (tmp_path / "nosplits").mkdir()
    with pytest.raises(UserError, match="has no train split"):
        build_dataset(_cfg(tmp_path / "nosplits", tmp_path), model_dir)
    empty = tmp_path / "empty"
    (empty / "train").mkdir(parents=True)
    pd.read_parquet(curated / "train" / "part-0.parquet").head(0).to_parquet(empty / "train" / "part-0.parquet")
    with pytest.raises(UserError, match="train split is empty"):
        build_dataset(_cfg(empty, tmp_path), model_dir)
    with pytest.raises(UserError, match="lacks the columns"):
        from clinitune.data.config import TaskConfig

        build_dataset(_cfg(curated, tmp_path, task=TaskConfig(name="instructions")), model_dir)
    with pytest.raises(UserError, match="data.model is not set"):
        build_dataset(_cfg(curated, tmp_path))


def test_a_tokenizer_without_chat_template_is_refused(model_dir, curated, tmp_path):
    from clinitune.data.build import build_dataset

    bare = tmp_path / "bare"
    shutil.copytree(model_dir, bare)
    (bare / "chat_template.jinja").unlink()
    tc = json.loads((bare / "tokenizer_config.json").read_text())
    tc.pop("chat_template", None)
    (bare / "tokenizer_config.json").write_text(json.dumps(tc))
    with pytest.raises(UserError, match="no chat template") as err:
        build_dataset(_cfg(curated, tmp_path), str(bare))
    assert "Fix:" in str(err.value)
