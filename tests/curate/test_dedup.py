import random

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

from clinitune.curate.dedup import (
    DedupConfig,
    _apply,
    _band_rows,
    _exact_groups,
    _note_keys,
    _shared_buckets,
    _signatures,
    _verify_buckets,
    estimated_jaccard,
    exact_key,
    mark_duplicates,
    minhash_signature,
    near_duplicate_pairs,
    optimal_lsh_params,
    shingles,
)

_SENTENCES = [
    "Patient reports {s} for the past {n} days.",
    "Denies {s} and {s2}.",
    "Vital signs: BP {b}/{d}, HR {h}, afebrile.",
    "On exam there is mild {s} without {s2}.",
    "Started on {m} {n} mg daily.",
    "Labs notable for {lab} of {v}.",
    "Plan: continue {m}, follow up in {n} weeks.",
    "Discussed {s} with patient and family.",
]
_SYMPTOMS = ["cough", "fever", "chest pain", "dyspnea", "nausea", "fatigue", "edema", "headache", "dizziness", "rash"]
_MEDS = ["lisinopril", "metformin", "furosemide", "amoxicillin", "atorvastatin", "prednisone", "apixaban"]
_LABS = ["sodium", "potassium", "creatinine", "hemoglobin", "troponin", "lactate"]


def _note(rng, sentences=36):
    """A templated clinical-looking note (~1.5 KB): unrelated notes share phrases but not 80% of shingles."""
    out = []
    for _ in range(sentences):
        out.append(
            rng.choice(_SENTENCES).format(
                s=rng.choice(_SYMPTOMS), s2=rng.choice(_SYMPTOMS), n=rng.randint(1, 30), b=rng.randint(90, 180),
                d=rng.randint(50, 110), h=rng.randint(50, 130), m=rng.choice(_MEDS), lab=rng.choice(_LABS),
                v=round(rng.uniform(0.5, 150), 1),
            )
        )
    return "\n".join(out)


def _edit(rng, text, n_edits=2):
    """A small edit: ``n_edits`` words replaced (true Jaccard of word 5-grams about 0.92 for 1.5 KB)."""
    words = text.split(" ")
    for _ in range(n_edits):
        i = rng.choice([k for k, w in enumerate(words) if "\n" not in w])
        words[i] = rng.choice(["worsening", "improved", "unchanged", "resolved"])
    return " ".join(words)


def test_shingles_and_exact_key():
    assert shingles("A b c", 5) == {"a b c"}
    assert shingles("one two, three four five six", 5) == {"one two three four five", "two three four five six"}
    assert shingles("--- ***", 5) == set()
    assert exact_key("Chest  pain\n\tresolved ") == exact_key("chest pain resolved")
    assert exact_key("chest pain resolved") != exact_key("chest pain resolving")


def test_minhash_estimates_jaccard():
    rng = random.Random(1)
    cfg = DedupConfig()
    a = _note(rng)
    b = _edit(rng, a, 6)
    sa, sb = shingles(a, 5), shingles(b, 5)
    true = len(sa & sb) / len(sa | sb)
    est = estimated_jaccard(minhash_signature(a, cfg), minhash_signature(b, cfg))
    assert abs(est - true) < 0.12
    assert minhash_signature(a, cfg).dtype == np.uint32 and len(minhash_signature(a, cfg)) == 128
    assert np.array_equal(minhash_signature(a, cfg), minhash_signature(a, DedupConfig()))  # deterministic
    assert minhash_signature("--- ***", cfg) is None
    unrelated = estimated_jaccard(minhash_signature(a, cfg), minhash_signature(_note(rng), cfg))
    assert unrelated < 0.3


def test_lsh_params():
    assert optimal_lsh_params(0.8, 128) == (9, 13)  # datasketch's choice with equal weights
    assert DedupConfig().lsh_params() == (11, 11)  # recall-leaning default
    bands, rows = DedupConfig(threshold=0.5).lsh_params()
    assert bands * rows <= 128 and rows < 11


def test_near_duplicate_pairs_in_process():
    rng = random.Random(2)
    base = [(f"n{i:03d}", _note(rng)) for i in range(60)]
    planted = [(f"z{i:03d}", _edit(rng, base[i][1])) for i in range(8)]
    found = near_duplicate_pairs(base + planted, DedupConfig())
    assert found == {f"z{i:03d}": f"n{i:03d}" for i in range(8)}


def test_block_functions_agree_with_in_process_reference():
    rng = random.Random(9)
    base = [(f"n{i:03d}", _note(rng)) for i in range(30)]
    records = base + [(f"z{i:03d}", _edit(rng, base[i][1])) for i in range(4)]
    cfg = DedupConfig()
    rows = pa.table(
        {
            "note_id": [r[0] for r in records] + ["q0"],
            "text": [r[1] for r in records] + [base[0][1]],
            "status": ["ok"] * len(records) + ["quarantined"],
        }
    )
    keys = _note_keys(rows, cfg)
    assert keys.num_rows == len(records)  # non-live rows do not take part
    bands = _band_rows(keys, *cfg.lsh_params())
    assert bands.column_names == ["band_key", "note_id"]  # the band shuffle carries no signature
    candidates = _shared_buckets(bands)
    # only notes that share a bucket go on to the join (here: the planted pairs, not the 26 others)
    assert set(candidates["note_id"].to_pylist()) == {f"n{i:03d}" for i in range(4)} | {f"z{i:03d}" for i in range(4)}
    with_sigs = candidates.join(_signatures(keys), "note_id", join_type="inner")
    pairs = _verify_buckets(with_sigs, cfg.threshold, cfg.max_bucket_size).to_pydict()
    smallest = {}
    for dup, of in zip(pairs["note_id"], pairs["dup_of"]):
        smallest[dup] = min(of, smallest.get(dup, of))
    assert smallest == near_duplicate_pairs(records, cfg) == {f"z{i:03d}": f"n{i:03d}" for i in range(4)}


def test_shared_buckets_keeps_whole_buckets_of_two_or_more():
    block = pa.table({"band_key": pa.array([5, 3, 5, 9, 3, 3], pa.uint64()), "note_id": ["a", "b", "c", "d", "e", "f"]})
    out = _shared_buckets(block).to_pydict()
    assert sorted(zip(out["band_key"], out["note_id"])) == [(3, "b"), (3, "e"), (3, "f"), (5, "a"), (5, "c")]
    assert _shared_buckets(block.slice(0, 1)).num_rows == 0
    assert _shared_buckets(block.take([0, 1, 3])).num_rows == 0


def test_exact_groups_survivor_is_smallest_id():
    block = pa.table(
        {"note_id": ["c", "a", "b", "d"], "exact_hash": ["h1", "h1", "h1", "h2"], "sig": [b"1", b"2", b"3", None]}
    )
    table = _exact_groups(block).to_pydict()
    out = dict(zip(table["note_id"], table["dup_of"]))
    assert out == {"a": None, "b": "a", "c": "a", "d": None}


def test_apply_flips_only_live_matches():
    table = pa.table(
        {
            "note_id": ["a", "b", "c"],
            "status": ["ok", "quarantined", "ok"],
            "reason": [None, "duplicate_note_id", None],
            "dup_of": ["x", "x", None],
            "_dup_reason": ["near_duplicate", "near_duplicate", None],
        }
    )
    out = _apply(table).to_pydict()
    assert out["status"] == ["duplicate", "quarantined", "ok"]
    assert out["reason"] == ["near_duplicate", "duplicate_note_id", None]
    assert out["dup_of"] == ["x", None, None]
    assert "_dup_reason" not in out


def _dedup_corpus():
    rng = random.Random(7)
    rows = [{"note_id": f"n{i:04d}", "text": _note(rng)} for i in range(270)]
    expected = {}
    for k in range(8):  # exact duplicates differing in case and whitespace; the survivor is the smallest id
        src = rows[k]
        rows.append({"note_id": f"x{k:04d}", "text": "  " + src["text"].upper().replace(" ", "   ")})
        expected[f"x{k:04d}"] = ("exact_duplicate", src["note_id"])
    # a triple: the copy with the smallest id survives even though it was added last
    rows.append({"note_id": "a0000", "text": rows[100]["text"]})
    expected["n0100"] = ("exact_duplicate", "a0000")
    for k in range(12):  # near duplicates: three words edited
        src = rows[20 + k]
        rows.append({"note_id": f"y{k:04d}", "text": _edit(rng, src["text"])})
        expected[f"y{k:04d}"] = ("near_duplicate", src["note_id"])
    # rows that are not live never take part, even with identical text
    for k in range(3):
        rows.append({"note_id": f"q{k:04d}", "text": rows[200]["text"], "status": "quarantined", "reason": "bad_date"})
    df = pd.DataFrame(rows)
    df["status"] = df.get("status").fillna("ok")
    df["patient_id"] = [f"p{i % 50}" for i in range(len(df))]
    return df, expected


def _run_and_check(ray_session, frame, expected, blocks):
    step = -(-len(frame) // blocks)  # one block per chunk, already materialized: no extra Ray stage
    ds = ray_session.data.from_pandas([frame.iloc[i : i + step] for i in range(0, len(frame), step)])
    out = mark_duplicates(ds, DedupConfig(num_partitions=3)).to_pandas()
    assert len(out) == len(frame)  # nothing lost
    out = out.set_index("note_id")
    dups = out[out["status"] == "duplicate"]
    assert {k: (r["reason"], r["dup_of"]) for k, r in dups.iterrows()} == expected
    assert out.loc["q0000", "status"] == "quarantined" and pd.isna(out.loc["q0000", "dup_of"])
    assert out.loc["q0000", "reason"] == "bad_date"
    assert (out["status"] == "ok").sum() == len(frame) - 3 - len(expected)
    assert out["dup_of"][out["status"] == "ok"].isna().all()
    assert out.loc["n0000", "text"] == frame.set_index("note_id").loc["n0000", "text"]  # other columns untouched


@pytest.mark.ray
def test_mark_duplicates_distributed(ray_session):
    # The expected survivors are defined by ids alone (smallest id wins), not by input order: the
    # corpus is shuffled and the smallest copy of the triple comes last.
    df, expected = _dedup_corpus()
    _run_and_check(ray_session, df.sample(frac=1.0, random_state=5).reset_index(drop=True), expected, 4)


@pytest.mark.ray
@pytest.mark.slow
def test_mark_duplicates_independent_of_order_and_blocks(ray_session):
    df, expected = _dedup_corpus()
    _run_and_check(ray_session, df, expected, 1)
    _run_and_check(ray_session, df.sample(frac=1.0, random_state=11).reset_index(drop=True), expected, 7)


def test_in_process_results_independent_of_order():
    rng = random.Random(4)
    base = [(f"n{i:03d}", _note(rng)) for i in range(40)]
    records = base + [(f"m{i:03d}", _edit(rng, base[i][1])) for i in range(5)] + [("a000", base[7][1])]
    first = near_duplicate_pairs(records, DedupConfig())
    rng.shuffle(records)
    assert near_duplicate_pairs(records, DedupConfig()) == first
    assert first["n007"] == "a000"  # identical text: the smallest id is kept
    block = pa.table({"note_id": ["c", "a", "b"], "exact_hash": ["h"] * 3, "sig": [b"1", b"2", b"3"]})
    for perm in ([0, 1, 2], [2, 1, 0], [1, 2, 0]):
        t = _exact_groups(block.take(perm)).to_pydict()
        assert dict(zip(t["note_id"], t["dup_of"])) == {"a": None, "b": "a", "c": "a"}
