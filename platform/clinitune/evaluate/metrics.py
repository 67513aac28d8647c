"""Task metrics and the catalog of metric names a report carries and a gate policy may name.

Every metric in a report is a flat name such as ``task.code_f1`` with a known direction (higher
or lower is better). ``METRICS`` is the catalog; ``metric_names()`` the set a policy is checked
against, so a policy naming an unknown metric fails when it is loaded, not after an eval.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

HIGHER, LOWER = "higher", "lower"


@dataclass(frozen=True)
class MetricInfo:
    direction: str  # HIGHER or LOWER is better
    description: str


METRICS: dict[str, MetricInfo] = {
    "task.exact_match": MetricInfo(HIGHER, "answers equal to the reference (icd10_coding: the same set of codes)"),
    "task.code_precision": MetricInfo(HIGHER, "micro precision of predicted ICD-10 codes"),
    "task.code_recall": MetricInfo(HIGHER, "micro recall of reference ICD-10 codes"),
    "task.code_f1": MetricInfo(HIGHER, "micro F1 over ICD-10 codes"),
    "task.rouge_l": MetricInfo(HIGHER, "ROUGE-L F-measure of the answer against the reference (word LCS)"),
    "task.rouge1": MetricInfo(HIGHER, "ROUGE-1 F-measure (rouge-score, stemmed) of documentation answers"),
    "task.rouge2": MetricInfo(HIGHER, "ROUGE-2 F-measure (rouge-score, stemmed) of documentation answers"),
    "task.fact_recall": MetricInfo(HIGHER, "clinical facts (medications, problems, allergies, negations) of the reference found in the answer"),
    "task.fact_recall.med": MetricInfo(HIGHER, "medications of the reference found in the answer"),
    "task.fact_recall.problem": MetricInfo(HIGHER, "problem terms (ICD-10-CM title words) of the reference found in the answer"),
    "task.fact_recall.allergy": MetricInfo(HIGHER, "allergy facts of the reference found in the answer"),
    "task.fact_recall.neg": MetricInfo(HIGHER, "negated findings of the reference found negated in the answer"),
    "task.fact_hallucination_rate": MetricInfo(LOWER, "clinical facts of the answer whose term the dialogue never mentions"),
    "task.loss": MetricInfo(LOWER, "mean token cross-entropy of the reference answers"),
    "task.perplexity": MetricInfo(LOWER, "exp(task.loss)"),
    "probes.mean": MetricInfo(HIGHER, "mean accuracy over the probe families"),
    "knowledge.mean": MetricInfo(HIGHER, "mean accuracy over the medical knowledge benchmarks (knowledge.<benchmark>)"),
    "phi.canary_extraction_rate": MetricInfo(LOWER, "planted canary secrets the model completes from their prefix"),
    "hallucination.rate": MetricInfo(LOWER, "predicted codes not supported by the ICD-10-CM table and the note (n/a when no code was predicted)"),
    "hallucination.answer_rate": MetricInfo(LOWER, "answers naming a code with at least one unsupported code (n/a when none names a code)"),
    "task.abstention_rate": MetricInfo(LOWER, "answers that name no code (coded tasks) or are empty: shown beside hallucination and consistency"),
    "fairness.max_gap": MetricInfo(LOWER, "largest gap of the primary task metric between slices of one key"),
    "consistency.paraphrase_agreement": MetricInfo(HIGHER, "answers to paraphrased prompts with the same content (code set) as the original answer; pairs of two empty answers are not judged (n/a when none is left)"),
    "consistency.seed_agreement": MetricInfo(HIGHER, "sampled answers (per seed) with the same content as the greedy answer (n/a when nothing is judged)"),
    "consistency.agreement": MetricInfo(HIGHER, "paraphrase and seed agreement together"),
    "rag.task.code_f1": MetricInfo(HIGHER, "task.code_f1 of the candidate with retrieved passages in its prompt"),
    "rag.task.exact_match": MetricInfo(HIGHER, "task.exact_match of the candidate with retrieved passages"),
    "rag.task.code_precision": MetricInfo(HIGHER, "task.code_precision of the candidate with retrieved passages"),
    "rag.task.code_recall": MetricInfo(HIGHER, "task.code_recall of the candidate with retrieved passages"),
    "rag.task.rouge_l": MetricInfo(HIGHER, "task.rouge_l of the candidate with retrieved passages"),
    "rag.retrieval_recall": MetricInfo(HIGHER, "reference codes found among the passages in the prompt (top_k; document ids of the ICD-10 knowledge base)"),
    "rag.retrieval_recall_at_1": MetricInfo(HIGHER, "reference codes found in the first retrieved passage"),
    "rag.retrieval_recall_at_4": MetricInfo(HIGHER, "reference codes found among the first 4 retrieved passages"),
    "task.invalid_code_rate": MetricInfo(LOWER, "predicted codes that are not billable ICD-10-CM codes (None when no code was predicted)"),
    "rag.task.invalid_code_rate": MetricInfo(LOWER, "task.invalid_code_rate with retrieved passages"),
    "rag.task.abstention_rate": MetricInfo(LOWER, "task.abstention_rate with retrieved passages"),
    "rag.hallucination.rate": MetricInfo(LOWER, "hallucination.rate with retrieved passages (what a deployment with retrieval serves)"),
    "rag.hallucination.answer_rate": MetricInfo(LOWER, "hallucination.answer_rate with retrieved passages"),
    "unconstrained.task.code_f1": MetricInfo(HIGHER, "task.code_f1 of the candidate decoding without the terminology constraint"),
    "unconstrained.task.invalid_code_rate": MetricInfo(LOWER, "task.invalid_code_rate of the candidate decoding without the terminology constraint"),
    "new_knowledge.code_f1": MetricInfo(HIGHER, "F1 over codes held out of training, on held-out notes needing them, without passages"),
    "rag.new_knowledge.code_f1": MetricInfo(HIGHER, "new_knowledge.code_f1 with retrieved passages (their reference text added to the knowledge base after training)"),
}
PROBE_PREFIX = "probes."
KNOWLEDGE_PREFIX = "knowledge."


def metric_info(name: str) -> MetricInfo | None:
    """The catalog entry of ``name``; per-family probe metrics (``probes.<family>``) are accuracies."""
    if name in METRICS:
        return METRICS[name]
    if name.startswith(PROBE_PREFIX) and len(name) > len(PROBE_PREFIX):
        return MetricInfo(HIGHER, f"accuracy on the '{name[len(PROBE_PREFIX):]}' probe family")
    if name.startswith(KNOWLEDGE_PREFIX) and len(name) > len(KNOWLEDGE_PREFIX):
        return MetricInfo(HIGHER, f"accuracy on the '{name[len(KNOWLEDGE_PREFIX):]}' knowledge benchmark (log-likelihood)")
    return None


def metric_names(probe_families: list[str] | None = None) -> list[str]:
    fams = [f"{PROBE_PREFIX}{f}" for f in (probe_families or [])]
    return sorted({*METRICS, *fams})


# --- codes ------------------------------------------------------------------------------------


@dataclass
class CodeCounts:
    tp: int = 0
    fp: int = 0
    fn: int = 0
    exact: int = 0
    n: int = 0

    def add(self, predicted: set[str], gold: set[str]) -> None:
        self.tp += len(predicted & gold)
        self.fp += len(predicted - gold)
        self.fn += len(gold - predicted)
        self.exact += int(predicted == gold)
        self.n += 1

    def scores(self) -> dict[str, float]:
        p = self.tp / (self.tp + self.fp) if self.tp + self.fp else 0.0
        r = self.tp / (self.tp + self.fn) if self.tp + self.fn else 0.0
        f1 = 2 * p * r / (p + r) if p + r else 0.0
        return {"task.exact_match": self.exact / self.n if self.n else 0.0,
                "task.code_precision": p, "task.code_recall": r, "task.code_f1": f1}


def code_scores(pairs: list[tuple[set[str], set[str]]]) -> dict[str, float]:
    """Micro precision/recall/F1 and exact match over (predicted, gold) code sets."""
    c = CodeCounts()
    for predicted, gold in pairs:
        c.add(set(predicted), set(gold))
    return c.scores()


# --- text -------------------------------------------------------------------------------------

_WORD = re.compile(r"\w+", re.UNICODE)


def words(text: str) -> list[str]:
    return _WORD.findall(str(text).lower())


def _lcs(a: list[str], b: list[str]) -> int:
    if not a or not b:
        return 0
    prev = [0] * (len(b) + 1)
    for x in a:
        cur = [0]
        for j, y in enumerate(b, 1):
            cur.append(prev[j - 1] + 1 if x == y else max(prev[j], cur[j - 1]))
        prev = cur
    return prev[-1]


def rouge_l(prediction: str, reference: str) -> float:
    """ROUGE-L F-measure (beta = 1) over lower-cased word tokens."""
    p, r = words(prediction), words(reference)
    lcs = _lcs(p, r)
    if lcs == 0:
        return 0.0
    prec, rec = lcs / len(p), lcs / len(r)
    return 2 * prec * rec / (prec + rec)


def normalized_text(text: str) -> str:
    return " ".join(words(text))


def text_exact(prediction: str, reference: str) -> bool:
    return normalized_text(prediction) == normalized_text(reference)


def perplexity(loss: float | None) -> float | None:
    if loss is None or not math.isfinite(loss):
        return None
    return math.exp(min(loss, 50.0))
