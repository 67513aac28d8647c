"""Stratified sampling by fairness slices, and the blinded A/B order (random, recorded, reproducible)."""

from __future__ import annotations

import json
import random
from collections import Counter

from clinitune.review.sampling import allocate, blind, stratified_sample, stratum_of

KEYS = ["sex", "age_band"]


def _records(sizes: dict[tuple[str, str], int]) -> list[dict]:
    out, i = [], 0
    for (sex, age), n in sizes.items():
        for _ in range(n):
            out.append({"example_id": f"ex-{i:04d}", "slices": {"sex": sex, "age_band": age}})
            i += 1
    return out


SIZES = {("F", "18-44"): 40, ("F", "65-89"): 20, ("M", "18-44"): 30, ("M", "65-89"): 8, ("M", "45-64"): 2}


def test_every_stratum_is_represented_and_the_rest_is_proportional():
    recs = _records(SIZES)
    sample = stratified_sample(recs, KEYS, 20, seed=1)
    assert len(sample) == 20 and len({r["example_id"] for r in sample}) == 20
    got = Counter(stratum_of(r, KEYS) for r in sample)
    assert set(got) == set(SIZES)  # even the 2-item slice is seen
    # one each first, the other 15 proportional to what is left (39, 19, 29, 7, 1 of 95)
    rest = {k: got[k] - 1 for k in SIZES}
    expected = {k: 15 * (SIZES[k] - 1) / 95 for k in SIZES}
    assert all(abs(rest[k] - expected[k]) < 1 for k in SIZES), (rest, expected)


def test_allocation_never_exceeds_a_stratum_and_sums_to_n():
    rng = random.Random(0)
    for trial in range(200):
        sizes = {(f"s{i}",): rng.randint(1, 12) for i in range(rng.randint(1, 8))}
        n = rng.randint(0, sum(sizes.values()) + 5)
        alloc = allocate(sizes, n, random.Random(trial))
        assert sum(alloc.values()) == min(n, sum(sizes.values()))
        assert all(0 <= alloc[k] <= sizes[k] for k in sizes)
        if n >= len(sizes):
            assert all(alloc[k] >= 1 for k in sizes)


def test_fewer_items_than_strata_draws_distinct_strata():
    recs = _records(SIZES)
    sample = stratified_sample(recs, KEYS, 3, seed=4)
    assert len(sample) == 3 and len({stratum_of(r, KEYS) for r in sample}) == 3


def test_same_seed_same_sample_other_seed_other_sample_and_all_when_n_is_large():
    recs = _records(SIZES)
    ids = lambda s: [r["example_id"] for r in s]  # noqa: E731
    assert ids(stratified_sample(recs, KEYS, 25, seed=7)) == ids(stratified_sample(list(reversed(recs)), KEYS, 25, seed=7))
    assert ids(stratified_sample(recs, KEYS, 25, seed=7)) != ids(stratified_sample(recs, KEYS, 25, seed=8))
    everything = stratified_sample(recs, KEYS, 1000, seed=0)
    assert sorted(ids(everything)) == sorted(ids(recs))
    assert stratified_sample(recs, [], 5, seed=0) and len(stratified_sample(recs, [], 5, seed=0)) == 5


def test_blinding_is_a_fair_coin_reproducible_and_seed_dependent():
    ids = [f"ex-{i}" for i in range(2000)]
    order = blind(ids, seed=3)
    share = sum(v == "candidate" for v in order.values()) / len(ids)
    assert 0.46 < share < 0.54  # fair: the candidate is A about half the time
    assert order == blind(ids, seed=3)
    assert order != blind(ids, seed=4)
    # not a pattern in position: runs of the same side are as short as a coin's
    seq = [order[i] for i in ids]
    longest = max(len(list(g)) for _, g in __import__("itertools").groupby(seq))
    assert longest < 20


def test_campaign_records_the_order_and_shows_each_answer_on_its_recorded_side(database, campaign_in, eval_copy):
    from clinitune.review.campaigns import get_campaign

    cid = campaign_in(n=24, seed=2)
    stored = {json.loads(l)["example_id"]: json.loads(l) for l in (eval_copy / "answers.jsonl").read_text().splitlines()}
    with database.session() as s:
        camp = get_campaign(s, cid)
        items = list(camp.items)
        assert camp.seed == 2 and len(items) == 24 and [it.position for it in items] == list(range(1, 25))
        sides = Counter(it.a_arm for it in items)
        assert set(sides) == {"candidate", "baseline"}  # both orders occur
        for it in items:
            rec = stored[it.example_id]
            assert it.answer_a == rec["answers"][it.a_arm]
            assert it.answer_b == rec["answers"][it.arm("B")] and it.arm("B") != it.a_arm
            assert it.reference == rec["reference"] and it.messages == rec["messages"] and it.slices == rec["slices"]
        # the order is the blind() of the sampled ids with the campaign's seed: reproducible from the record
        assert {it.example_id: it.a_arm for it in items} == blind([it.example_id for it in items], 2)
