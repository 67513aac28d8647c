"""Which held-out items a campaign grades, and the blinded order of the two answers.

Stratified sampling: a stratum is one combination of the evaluation's fairness-slice values (sex x
age band x note type, ...). Every stratum gets at least one item when the sample is at least as
large as the number of strata (so small slices are seen by a clinician at all); the rest of the
sample is allocated in proportion to stratum size (largest remainder, ties broken by the seeded
generator), never more than a stratum holds; items within a stratum are drawn at random. When the
sample is smaller than the number of strata, the strata that get an item are drawn with
probability proportional to their size. Everything is a function of the seed, so the same seed on
the same answers gives the same campaign.

Blinding: for each sampled item a fair coin, from a generator seeded separately, decides whether
the candidate's answer is shown as A or as B; the outcome is stored with the item.
"""

from __future__ import annotations

import random
from collections import defaultdict
from typing import Sequence

CANDIDATE, BASELINE = "candidate", "baseline"


def stratum_of(record: dict, slice_keys: Sequence[str]) -> tuple[str, ...]:
    slices = record.get("slices") or {}
    return tuple(str(slices.get(k, "unknown")) for k in slice_keys)


def allocate(sizes: dict[tuple, int], n: int, rng: random.Random) -> dict[tuple, int]:
    """How many items each stratum gives to a sample of ``n`` (sum = min(n, total))."""
    total = sum(sizes.values())
    n = min(n, total)
    keys = sorted(sizes)
    alloc = {k: 0 for k in keys}
    if n <= 0:
        return alloc
    if n < len(keys):  # not every stratum can be represented: draw the ones that are, by size
        pool = list(keys)
        for _ in range(n):
            weights = [sizes[k] for k in pool]
            pick = rng.choices(pool, weights=weights, k=1)[0]
            alloc[pick] = 1
            pool.remove(pick)
        return alloc
    for k in keys:  # one each first
        alloc[k] = 1
    rest = n - len(keys)
    room = {k: sizes[k] - 1 for k in keys}
    while rest > 0:
        open_keys = [k for k in keys if room[k] > 0]
        cap = sum(room[k] for k in open_keys)
        quotas = {k: rest * room[k] / cap for k in open_keys}
        floors = {k: min(int(quotas[k]), room[k]) for k in open_keys}
        given = sum(floors.values())
        left = rest - given
        tiebreak = {k: rng.random() for k in open_keys}
        by_remainder = sorted(open_keys, key=lambda k: (-(quotas[k] - int(quotas[k])), tiebreak[k]))
        for k in by_remainder:
            if left <= 0:
                break
            if floors[k] < room[k]:
                floors[k] += 1
                left -= 1
        for k in open_keys:
            alloc[k] += floors[k]
            room[k] -= floors[k]
        rest = left
    return alloc


def stratified_sample(records: Sequence[dict], slice_keys: Sequence[str], n: int, seed: int) -> list[dict]:
    """``n`` records (all of them when fewer), stratified by ``slice_keys``, in a seeded random order."""
    rng = random.Random(f"clinitune-review-sample:{seed}")
    strata: dict[tuple, list[dict]] = defaultdict(list)
    for rec in sorted(records, key=lambda r: str(r["example_id"])):
        strata[stratum_of(rec, slice_keys)].append(rec)
    alloc = allocate({k: len(v) for k, v in strata.items()}, n, rng)
    chosen: list[dict] = []
    for key in sorted(strata):
        if alloc[key]:
            chosen.extend(rng.sample(strata[key], alloc[key]))
    rng.shuffle(chosen)  # reviewers should not grade one stratum after another
    return chosen


def blind(example_ids: Sequence[str], seed: int) -> dict[str, str]:
    """For each example id, which role is shown as answer A (``candidate`` or ``baseline``), by a seeded fair coin."""
    rng = random.Random(f"clinitune-review-blind:{seed}")
    return {str(i): (CANDIDATE if rng.random() < 0.5 else BASELINE) for i in example_ids}
