"""A campaign's results from its grades: win rate, accuracy per slice, unsafe flags, agreement.

Only each reviewer's latest grade of an item counts (grades are append-only). Grades are stored
against the blinded labels A/B and mapped back to candidate/baseline through the item's recorded
order here, after grading.

* **Win rate** of the candidate against the baseline: per item, the mean over its reviewers of
  1 (candidate preferred), 0.5 (tie) or 0 (baseline preferred); the campaign's rate is the mean
  over graded items. Its 95 % interval is Wilson's score interval with the item as the unit
  (``wilson_interval``; a tie-split item counts as a fractional success, as statsmodels'
  ``proportion_confint(method="wilson")`` allows), so several reviewers of one item do not shrink
  the interval as if they were independent items.
* **Accuracy** per role: shares of correct / partially correct / incorrect over (item, reviewer)
  judgements, and a score (correct 1, partial 0.5), overall and per slice value.
* **Unsafe flags** per role and category: how many (item, reviewer) judgements flagged it, and on
  how many items.
* **Agreement**: Cohen's kappa (scikit-learn's ``cohen_kappa_score``) for every pair of reviewers
  on the items both graded: on the per-answer grades (unweighted and linearly weighted, the grades
  being ordered) and on the preference mapped to candidate/baseline/tie.
"""

from __future__ import annotations

import math
from collections import defaultdict
from itertools import combinations
from typing import Iterable

from clinitune.evaluate.review_gate import UNSAFE_CATEGORIES
from clinitune.review.models import GRADES

Z95 = 1.959963984540054
GRADE_SCORE = {"correct": 1.0, "partial": 0.5, "incorrect": 0.0}
ROLES = ("candidate", "baseline")


def wilson_interval(successes: float, n: int, z: float = Z95) -> tuple[float, float]:
    """Wilson score interval for a proportion ``successes / n`` (successes may be fractional)."""
    if n <= 0:
        return (0.0, 1.0)
    p = successes / n
    denom = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    return (max(0.0, centre - half), min(1.0, centre + half))


def judgements(grades: Iterable, items: dict[int, object]) -> list[dict]:
    """The latest grade of each (item, reviewer), unblinded: one dict per judgement."""
    latest: dict[tuple[int, int], object] = {}
    for g in grades:
        key = (g.item_id, g.reviewer_id)
        if key not in latest or g.id > latest[key].id:
            latest[key] = g
    out = []
    for (item_id, reviewer_id), g in sorted(latest.items()):
        item = items[item_id]
        role_of = {"A": item.arm("A"), "B": item.arm("B")}
        by_role = {role_of["A"]: (g.grade_a, list(g.unsafe_a or [])), role_of["B"]: (g.grade_b, list(g.unsafe_b or []))}
        pref = "tie" if g.preference == "tie" else role_of[g.preference]
        out.append({"item_id": item_id, "reviewer_id": reviewer_id, "grade_id": g.id, "preferred": pref,
                    "grade": {r: by_role[r][0] for r in ROLES}, "unsafe": {r: by_role[r][1] for r in ROLES},
                    "slices": dict(item.slices or {})})
    return out


def _accuracy(js: list[dict], role: str) -> dict:
    n = len(js)
    counts = {g: sum(1 for j in js if j["grade"][role] == g) for g in GRADES}
    return {"n": n, **{g: (counts[g] / n if n else None) for g in GRADES},
            "score": (sum(GRADE_SCORE[j["grade"][role]] for j in js) / n if n else None)}


def win_rate(js: list[dict]) -> dict:
    per_item: dict[int, list[float]] = defaultdict(list)
    for j in js:
        per_item[j["item_id"]].append({"candidate": 1.0, "tie": 0.5, "baseline": 0.0}[j["preferred"]])
    n = len(per_item)
    if not n:
        return {"rate": None, "ci_low": None, "ci_high": None, "n": 0, "wins": 0, "ties": 0, "losses": 0}
    scores = [sum(v) / len(v) for v in per_item.values()]
    s = sum(scores)
    lo, hi = wilson_interval(s, n)
    return {"rate": s / n, "ci_low": lo, "ci_high": hi, "n": n, "method": "wilson, item-level, ties count half",
            "wins": sum(1 for j in js if j["preferred"] == "candidate"), "ties": sum(1 for j in js if j["preferred"] == "tie"),
            "losses": sum(1 for j in js if j["preferred"] == "baseline")}


def unsafe_counts(js: list[dict]) -> dict:
    out = {}
    for role in ROLES:
        out[role] = {c: sum(1 for j in js if c in j["unsafe"][role]) for c in UNSAFE_CATEGORIES}
        out[f"{role}_items"] = {c: len({j["item_id"] for j in js if c in j["unsafe"][role]}) for c in UNSAFE_CATEGORIES}
    return out


def by_slice(js: list[dict], slice_keys: list[str]) -> dict:
    out: dict[str, dict] = {}
    for key in slice_keys:
        groups: dict[str, list[dict]] = defaultdict(list)
        for j in js:
            groups[str(j["slices"].get(key, "unknown"))].append(j)
        out[key] = {value: {"items": len({j["item_id"] for j in g}), **{r: _accuracy(g, r) for r in ROLES},
                            "win_rate": win_rate(g)["rate"]}
                    for value, g in sorted(groups.items())}
    return out


def agreement(js: list[dict], names: dict[int, str]) -> dict:
    """Cohen's kappa for every pair of reviewers who graded the same items."""
    from sklearn.metrics import cohen_kappa_score

    by_reviewer: dict[int, dict[int, dict]] = defaultdict(dict)
    for j in js:
        by_reviewer[j["reviewer_id"]][j["item_id"]] = j
    pairs = []
    for r1, r2 in combinations(sorted(by_reviewer), 2):
        shared = sorted(set(by_reviewer[r1]) & set(by_reviewer[r2]))
        if not shared:
            continue
        g1 = [by_reviewer[r1][i]["grade"][r] for i in shared for r in ROLES]
        g2 = [by_reviewer[r2][i]["grade"][r] for i in shared for r in ROLES]
        p1 = [by_reviewer[r1][i]["preferred"] for i in shared]
        p2 = [by_reviewer[r2][i]["preferred"] for i in shared]
        ordinal = {g: k for k, g in enumerate(GRADES)}
        pairs.append({
            "reviewers": [names.get(r1, str(r1)), names.get(r2, str(r2))], "shared_items": len(shared),
            "grade_kappa": _kappa(cohen_kappa_score, g1, g2, labels=list(GRADES)),
            "grade_kappa_linear": _kappa(cohen_kappa_score, [ordinal[g] for g in g1], [ordinal[g] for g in g2],
                                         labels=list(range(len(GRADES))), weights="linear"),
            "preference_kappa": _kappa(cohen_kappa_score, p1, p2, labels=["candidate", "tie", "baseline"]),
            "grade_agreement": sum(a == b for a, b in zip(g1, g2)) / len(g1),
            "preference_agreement": sum(a == b for a, b in zip(p1, p2)) / len(p1),
        })

    def mean(key: str) -> float | None:
        vals = [p[key] for p in pairs if p[key] is not None]
        return sum(vals) / len(vals) if vals else None

    return {"pairs": pairs, "mean_grade_kappa": mean("grade_kappa"), "mean_preference_kappa": mean("preference_kappa"),
            "items_multi_graded": len({i for r in by_reviewer.values() for i in r
                                       if sum(1 for other in by_reviewer.values() if i in other) > 1})}


def _kappa(fn, a: list, b: list, **kw) -> float | None:
    """Cohen's kappa, or None where it is undefined (both raters used one and the same label only)."""
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        k = fn(a, b, **kw)
    return None if k is None or not math.isfinite(k) else float(k)


def summarize(campaign, items: list, grades: list, names: dict[int, str]) -> dict:
    """Everything the report, MLflow and the gate need from a campaign (JSON-ready)."""
    by_id = {it.id: it for it in items}
    js = judgements(grades, by_id)
    reviewers = sorted({names.get(j["reviewer_id"], str(j["reviewer_id"])) for j in js})
    return {
        "campaign_id": campaign.id, "name": campaign.name, "status": campaign.status,
        "created_at": campaign.created_at.isoformat() if campaign.created_at else None,
        "closed_at": campaign.closed_at.isoformat() if campaign.closed_at else None, "closed_by": campaign.closed_by,
        "candidate": campaign.candidate_name, "baseline": campaign.baseline_name,
        "arms": {"candidate": campaign.candidate_arm, "baseline": campaign.baseline_arm},
        "items": len(items), "graded_items": len({j["item_id"] for j in js}), "reviewers": len(reviewers),
        "reviewer_names": reviewers, "judgements": len(js), "grades_recorded": len(grades),
        "win_rate": win_rate(js),
        "accuracy": {r: _accuracy(js, r) for r in ROLES},
        "by_slice": by_slice(js, list(campaign.slice_keys or [])),
        "unsafe": unsafe_counts(js),
        "agreement": agreement(js, names),
        "seed": campaign.seed,
    }
