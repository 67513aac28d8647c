"""Task metrics per slice (sex, age band, note type) and the largest gap between slices of one key.

Each held-out example carries its slice values. For every slice key the primary task metric is
computed per value; the key's gap is the best minus the worst value among slices with at least
``min_slice_size`` examples (smaller slices are reported, marked ``small``, and left out of the
gap: on a few examples a gap says more about noise than about the model).
"""

from __future__ import annotations

from collections import defaultdict
from typing import Callable

Scorer = Callable[[list[int]], dict[str, float]]


def slice_metrics(slice_values: dict[str, list[str]], scorer: Scorer, primary: str, min_slice_size: int) -> dict:
    """``slice_values``: key -> per-example value (same order as the scorer's examples).

    ``scorer(indices)`` returns the task metrics of the examples at ``indices``. Returns
    ``{key: {"slices": {value: {"n", "small", metrics...}}, "gap", "best", "worst"}}``.
    """
    out: dict[str, dict] = {}
    for key, values in slice_values.items():
        groups: dict[str, list[int]] = defaultdict(list)
        for i, v in enumerate(values):
            groups[str(v) if v not in (None, "") else "unknown"].append(i)
        slices = {}
        for value in sorted(groups):
            idx = groups[value]
            slices[value] = {"n": len(idx), "small": len(idx) < min_slice_size, **scorer(idx)}
        eligible = {v: s[primary] for v, s in slices.items() if not s["small"] and s.get(primary) is not None}
        gap = best = worst = None
        if len(eligible) >= 2:
            best = max(eligible, key=eligible.get)
            worst = min(eligible, key=eligible.get)
            gap = eligible[best] - eligible[worst]
        out[key] = {"slices": slices, "gap": gap, "best": best, "worst": worst}
    return out


def max_gap(per_key: dict) -> tuple[float | None, str | None]:
    """The largest gap over keys and the key it belongs to (None when no key has two eligible slices)."""
    gaps = {k: v["gap"] for k, v in per_key.items() if v.get("gap") is not None}
    if not gaps:
        return None, None
    key = max(gaps, key=gaps.get)
    return gaps[key], key
