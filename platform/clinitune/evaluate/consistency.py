"""Consistency: does the model give the same answer when the question is re-worded or re-sampled?

For the first ``n_examples`` held-out examples the task prompt is re-built with built-in
paraphrased instructions (through the same task builder, so only the instruction changes) and
answered greedily; the original prompt is also answered with sampling under each seed. An answer
*agrees* when it says the same as the greedy answer to the original prompt — compared on content:
for ``icd10_coding`` the set of normalised codes, otherwise the normalised text.

A pair where both answers are empty (no code) has nothing to judge and is left out; with no pair
left the agreement is undefined (None, shown as n/a with the reason), never a perfect score.
Paraphrase and seed agreement are reported separately, each with its number of pairs and a 95%
Wilson interval (the gate judges paraphrase agreement by the interval's lower end).
"""

from __future__ import annotations

PARAPHRASES: dict[str, tuple[str, ...]] = {
    "icd10_coding": (
        "Which ICD-10-CM diagnosis codes apply to the clinical note below? Reply with the codes only, comma-separated.",
        "Assign ICD-10-CM codes to this note. Give only the codes, separated by commas.",
        "Read the clinical note and output its ICD-10-CM diagnosis codes as a comma-separated list, nothing else.",
        "Code this clinical note in ICD-10-CM. Output the codes only, separated by commas.",
    ),
}


def paraphrases_for(task: str, n: int) -> list[str]:
    return list(PARAPHRASES.get(task, ()))[:n]


def agreement(pairs: list[tuple[object, object]]) -> float | None:
    """Fraction of (variant, original) pairs that are equal; None when there are none."""
    if not pairs:
        return None
    return sum(1 for a, b in pairs if a == b) / len(pairs)


def judged(pairs: list[tuple[object, object]]) -> list[tuple[object, object]]:
    """The pairs with something to judge: at least one of the two answers says something."""
    return [(a, b) for a, b in pairs if a or b]


def summarize(pairs: list[tuple[object, object]], decoding: str) -> dict:
    """Pairs, judged pairs, agreement and its 95% Wilson interval (None with a reason when nothing is judged)."""
    from scipy.stats import binomtest

    kept = judged(pairs)
    agreed = sum(1 for a, b in kept if a == b)
    out = {"pairs": len(pairs), "judged": len(kept), "both_empty": len(pairs) - len(kept), "agreed": agreed,
           "agreement": agreed / len(kept) if kept else None, "ci95": None, "decoding": decoding, "reason": None}
    if kept:
        ci = binomtest(agreed, len(kept)).proportion_ci(confidence_level=0.95, method="wilson")
        out["ci95"] = [float(ci.low), float(ci.high)]
    else:
        out["reason"] = ("n/a: no pairs were asked" if not pairs else
                         f"n/a: in all {len(pairs)} pairs both answers are empty (the model abstained), so there is nothing to judge")
    return out
