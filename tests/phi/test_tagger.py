"""The learned tagger: trained (toy size) and reloaded offline, read through windows, its files
checked; the engine's ensemble mode runs it batched beside the rules."""

from __future__ import annotations

import json
import shutil

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from clinitune.phi import PhiConfig, PhiEngine, PhiProcessingError
from clinitune.phi.tagger import ADAPTER_FILE, META_FILE, PhiModelError, PhiTagger, windows
from clinitune.phi.training.train import train_tagger
from clinitune.synth.gold import gold_notes


def test_windows_cover_every_token_with_overlap():
    assert windows(0, 126, 96) == [(0, 0)]
    assert windows(100, 126, 96) == [(0, 100)]
    spans = windows(1000, 126, 96)
    assert spans[0] == (0, 126) and spans[-1][1] == 1000
    assert all(b[0] < a[1] for a, b in zip(spans, spans[1:]))  # consecutive windows overlap
    assert all(e - s == 126 for s, e in spans)


def test_training_is_seeded_and_publishes_a_small_adapter(toy_tagger_dir, toy_config_factory, tmp_path):
    again = train_tagger(toy_config_factory(), synthetic=gold_notes, output=tmp_path / "again")
    first = json.loads((toy_tagger_dir / META_FILE).read_text())
    second = json.loads((again / META_FILE).read_text())
    assert first["adapter_sha256"] == second["adapter_sha256"]  # same config, same weights
    assert (toy_tagger_dir / ADAPTER_FILE).stat().st_size < 5 * 2**20  # the adapter and head, not the encoder
    assert first["trained_on"]["synthetic"] == 6 and first["labels"][0] == "O"
    assert not list(tmp_path.glob(".again*"))  # no staging left behind


def test_surrogate_pools_do_not_depend_on_the_string_hash_seed():
    """Training data (so the weights) must be the same in every process: a Faker table built from a
    set (it_IT's cities) once made the pools, and the shipped weights, vary with PYTHONHASHSEED."""
    import os
    import subprocess
    import sys

    code = ("import hashlib, json; from clinitune.phi.training.pools import Pool; "
            "print(hashlib.sha256(json.dumps([Pool(s).values for s in ('train', 'eval')]).encode()).hexdigest())")
    digests = {subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=300,
                              env={**os.environ, "PYTHONHASHSEED": seed}).stdout.strip() for seed in ("1", "2")}
    assert len(digests) == 1


def test_toy_tagger_reloads_and_tags_a_note_longer_than_its_window(toy_tagger_dir):
    tagger = PhiTagger.load(toy_tagger_dir, precision="fp32")
    assert tagger.max_length == 64
    note = "Pt seen by Dr. Lindqvist on 7/22/2019. Vitals stable. " * 60  # ~900 tokens, ~20 windows
    out = tagger.predict([note, "", "short note"])
    assert len(out) == 3 and out[1].hits == []
    assert len(out[0].starts) > 10 * tagger.max_length
    assert all(0 <= s < e <= len(note) and 0.0 < p < 1.0 for s, e, _, p in out[0].hits)


def test_missing_weights_name_the_rebuild_command(tmp_path):
    engine = PhiEngine(PhiConfig(detector="ensemble", model_dir=str(tmp_path / "nowhere")))
    with pytest.raises(PhiModelError, match="clinitune phi train --config"):
        engine.warm_up()


def test_corrupt_weights_are_refused_not_skipped(toy_tagger_dir, tmp_path):
    bad = tmp_path / "bad"
    shutil.copytree(toy_tagger_dir, bad)
    data = bytearray((bad / ADAPTER_FILE).read_bytes())
    data[len(data) // 2] ^= 0xFF
    (bad / ADAPTER_FILE).write_bytes(bytes(data))
    with pytest.raises(PhiModelError, match="corrupt.*clinitune phi train"):
        PhiTagger.load(bad)
    (bad / META_FILE).write_text("{not json", encoding="utf-8")
    with pytest.raises(PhiModelError, match="unreadable"):
        PhiTagger.load(bad)


def test_ensemble_engine_batches_notes_and_isolates_bad_ones(toy_tagger_dir):
    engine = PhiEngine(PhiConfig(detector="ensemble", model_dir=str(toy_tagger_dir), precision="fp32"))
    texts = ["Mr. Hargrove seen 2021-05-18.", b"bytes", "", "\x00" * 200 + "x" * 10, "Call 410-322-1419."]
    out = engine.detect_many(texts, ["a", "b", "c", "d", "e"])
    assert isinstance(out[1], PhiProcessingError) and out[1].note_id == "b"
    assert isinstance(out[3], PhiProcessingError) and "binary" in out[3].reason
    assert out[2] == []
    rules = PhiEngine(PhiConfig(detector="rules"))
    for i in (0, 4):  # the union never loses what the rules find
        assert all(any(s.start <= r.start and r.end <= s.end for s in out[i]) for r in rules.detect(texts[i]))
    assert "2021-05-18" not in engine.redact(texts[0]).text


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(st.one_of(
    st.text(max_size=700),
    st.binary(max_size=700).map(lambda b: b.decode("utf-8", "surrogateescape")),  # mixed / broken encodings
    st.lists(st.sampled_from(["Dr.", "Zorblatt", "2021-05-18T09:30Z", "\n", "\x00", "\ud83d", "\u00e9", "[NAME]", "#" * 40]),
             max_size=200).map(" ".join),
))
def test_ensemble_never_crashes_on_garbage(toy_tagger_dir, text):
    engine = PhiEngine(PhiConfig(detector="ensemble", model_dir=str(toy_tagger_dir), precision="fp32"))
    out = engine.detect_many([text], ["g-1"])[0]
    if isinstance(out, PhiProcessingError):  # binary-looking: a clear error naming the note, never text
        assert out.note_id == "g-1" and "binary" in out.reason
        return
    assert all(0 <= s.start < s.end <= len(text) for s in out)
    assert all(a.end <= b.start for a, b in zip(out, out[1:]))


def test_a_holdout_fold_never_reaches_training(tmp_path, toy_config_factory):
    """data.holdout keeps one patient-level fold out, the same fold the benchmark scores: the
    shipped weights have patients they never saw."""
    from clinitune.errors import UserError
    from clinitune.phi.training.corpus import load_annotated, patient_folds
    from clinitune.phi.training.train import training_notes

    corpus = tmp_path / "gold.jsonl"
    corpus.write_text("".join(json.dumps({"note_id": f"n{i}", "patient_id": f"p{i % 3}", "text": f"Seen by Dr. Vrenthal {i}.",
                                          "phi": [{"start": 12, "end": 20, "type": "HCPName"}]}) + "\n" for i in range(9)))
    notes = load_annotated(corpus)
    held = {notes[i].note_id for i in patient_folds(notes, 3)[1]}
    cfg = toy_config_factory(data={"annotated": [str(corpus)], "synthetic_notes": 0, "augment_copies": 0,
                                         "holdout": {"folds": 3, "fold": 1}})
    kept, counts = training_notes(cfg)
    assert held and not held & {n.note_id for n in kept} and counts["annotated_with_phi"] == 6
    with pytest.raises(UserError, match="holdout.fold"):
        training_notes(toy_config_factory(data={"annotated": [str(corpus)], "synthetic_notes": 0,
                                                      "holdout": {"folds": 3, "fold": 3}}))

