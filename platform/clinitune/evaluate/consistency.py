"""Consistency: does the model give the same answer when the question is re-worded or re-sampled?

For the first ``n_examples`` held-out examples the task prompt is re-built with built-in
paraphrased instructions (through the same task builder, so only the instruction changes) and
answered greedily; the original prompt is also answered with sampling under each seed. An answer
*agrees* when it equals the greedy answer to the original prompt (for ``icd10_coding``: the same
set of codes; otherwise the same normalised text).
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
