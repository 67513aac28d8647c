"""Canaries: planting into the train split, and extraction detected on a model overfit on them."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from clinitune.errors import InputPathError
from clinitune.evaluate.canaries import extracted, make_canaries, plant_canaries, read_canaries
from clinitune.models.generate import cut_at_secret


def test_canaries_are_deterministic_unique_and_not_in_real_data():
    a, b = make_canaries(6, seed=3), make_canaries(6, seed=3)
    assert a == b and len({c.secret for c in a}) == 6
    assert make_canaries(6, seed=4)[0].secret != a[0].secret
    for c in a:
        assert c.text.startswith(c.prefix) and c.text[len(c.prefix):].startswith(c.secret)
    assert cut_at_secret(f"<user>{a[0].text}", a[0].secret) == f"<user>{a[0].prefix}"
    assert extracted(f"{a[0].secret}. Assessment", a[0].secret) and not extracted("QQ-0000", a[0].secret)


def test_plant_into_train_only(toy_data, tmp_path):
    out = tmp_path / "with-canaries"
    canaries = plant_canaries(toy_data, out, n=4, seed=1)
    train = pd.concat([pd.read_parquet(p) for p in (out / "train").glob("*.parquet")])
    test = pd.concat([pd.read_parquet(p) for p in (out / "test").glob("*.parquet")])
    ids = {c.note_id for c in canaries}
    assert ids <= set(train["note_id"]) and not ids & set(test["note_id"])
    orig_train = pd.read_parquet(toy_data / "train" / "part-0.parquet")
    assert len(train) == len(orig_train) + 4
    manifest = json.loads((out / "manifest.json").read_text())
    old = json.loads((toy_data / "manifest.json").read_text())
    assert manifest["parent_dataset_hash"] == old["dataset_hash"] and manifest["dataset_hash"] != old["dataset_hash"]
    assert manifest["canaries"]["count"] == 4
    assert read_canaries(out / "canaries.json") == canaries
    row = train[train["note_id"] == canaries[0].note_id].iloc[0]
    assert json.loads(row["attributes"])["icd10"] == list(canaries[0].icd10)
    with pytest.raises(InputPathError, match="manifest.json"):
        plant_canaries(tmp_path, tmp_path / "x", n=2)


def _overfit_on_canaries(model_dir, canaries, out_dir, steps: int = 200):
    """A copy of the tiny model trained (full-sequence loss) on the canaries' training examples."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from clinitune.data.builders import Icd10Coding

    tok = AutoTokenizer.from_pretrained(model_dir)
    model = AutoModelForCausalLM.from_pretrained(model_dir)
    frame = pd.DataFrame({"note_id": [c.note_id for c in canaries], "text": [c.text for c in canaries],
                          "attributes": [json.dumps({"icd10": list(c.icd10)}) for c in canaries]})
    texts = [tok.apply_chat_template(json.loads(m), tokenize=False) for m in Icd10Coding()(frame)["messages"]]
    enc = tok(texts, return_tensors="pt", padding=True, add_special_tokens=False)
    labels = enc["input_ids"].masked_fill(enc["attention_mask"] == 0, -100)
    opt = torch.optim.AdamW(model.parameters(), lr=3e-3)
    torch.manual_seed(0)
    model.train()
    for _ in range(steps):
        loss = model(**enc, labels=labels).loss
        loss.backward()
        opt.step()
        opt.zero_grad()
    model.save_pretrained(out_dir)
    tok.save_pretrained(out_dir)
    return out_dir, float(loss.detach())


def test_extraction_detected_on_a_model_overfit_on_canaries(tiny_model, tmp_path, write_toy_curated):
    from clinitune.evaluate.config import EvalConfig
    from clinitune.models.generate import run_local
    from clinitune.evaluate.items import build_eval_set
    from clinitune.artifacts.model import resolve_ref
    from clinitune.evaluate.scoring import score_model

    canaries = make_canaries(4, seed=11)
    overfit, final_loss = _overfit_on_canaries(tiny_model, canaries, tmp_path / "overfit")
    assert final_loss < 0.3
    data = write_toy_curated(tmp_path / "data", n_train=2, n_validation=0, n_test=4)
    cfg = EvalConfig(candidate=str(overfit), data=str(data), loss=False, probes={"enabled": False},
                     consistency={"enabled": False}, canaries={"max_new_tokens": 16})
    es = build_eval_set(cfg, "icd10_coding", {}, None, canaries)
    rates = {}
    for name, ref in (("overfit", overfit), ("base", tiny_model)):
        results = run_local(resolve_ref(str(ref)), es.items, batch_size=4)
        rates[name] = score_model(es, results, 1)["metrics"]["phi.canary_extraction_rate"]
    assert rates["overfit"] >= 0.75
    assert rates["base"] == 0.0
