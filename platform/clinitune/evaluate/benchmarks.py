"""Medical knowledge benchmarks: multiple-choice files, their prompts, and accuracy with intervals.

A benchmark file is JSON lines, one question per line, as MedAgentsBench distributes MedMCQA,
PubMedQA and the MMLU medical subjects::

    {"realidx": ..., "question": "...", "options": {"A": "...", "B": "..."}, "answer_idx": "A", "subject": "anatomy"}

A line that is not such an object (bad JSON, no question, fewer than two options, an answer that
is not one of the options, a duplicate id) is quarantined with its line number and reason; the rest
are scored and the count is reported.

Scoring is the standard log-likelihood one: every option is a continuation of the question, and
the option with the highest summed token log-probability is the model's answer. Prompts follow
lm-evaluation-harness: the context ends without a space and each continuation starts with one
(``"...\\nAnswer:"`` + ``" <option>"``), few-shot examples are whole solved questions joined by a
blank line, and the token split is :func:`clinitune.models.loglik.encode_pair`. Two templates:

* ``cloze`` (default): ``Question: <q>\\nAnswer:`` + `` <option text>`` — the likelihood of each
  answer itself (what a small model can be measured on);
* ``letters``: the options listed as ``A. ...`` in the prompt + `` A`` / `` B`` ... (MMLU's
  original format; informative for larger models).

Accuracy (and the byte-length-normalised ``acc_norm``) comes with a percentile bootstrap interval
per benchmark and per subject; base vs candidate gets a paired bootstrap interval of the
difference on the same items.
"""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from pydantic import Field, field_validator

from clinitune.config import StrictModel
from clinitune.errors import InputPathError

SHARED_MCQ = "../shared/data/medical-mcq"
FEW_SHOT_DELIMITER = "\n\n"


class BenchmarkFile(StrictModel):
    """One benchmark: a JSONL file of multiple-choice questions."""

    name: str = Field(..., min_length=1, pattern=r"^[A-Za-z0-9_.-]+$", description="Benchmark name in the report and metric names (knowledge.<name>).")
    path: str = Field(..., description="JSONL file of questions (realidx, question, options {letter: text}, answer_idx, optional subject).")
    template: Literal["cloze", "letters"] = Field("cloze", description="cloze: score each option's text after 'Question: ...\\nAnswer:'; letters: options listed in the prompt, score ' A', ' B', ...")
    few_shot_path: str | None = Field(None, description="JSONL file the few-shot examples come from (the benchmark's own dev/train part, never the scored file); null = zero-shot only.")
    subject_field: str | None = Field("subject", description="Field holding the item's subject (accuracy is also reported per subject); null = none.")


def default_files() -> list[BenchmarkFile]:
    """MedMCQA, PubMedQA and the six MMLU medical subjects from the shared data folder."""
    root = SHARED_MCQ
    return [
        BenchmarkFile(name="medmcqa", path=f"{root}/medmcqa-test.jsonl"),
        BenchmarkFile(name="pubmedqa", path=f"{root}/pubmedqa-test.jsonl", few_shot_path=f"{root}/pubmedqa-train.jsonl"),
        BenchmarkFile(name="mmlu_medical", path=f"{root}/mmlu-test.jsonl", few_shot_path=f"{root}/mmlu-dev.jsonl"),
    ]


class BenchmarksConfig(StrictModel):
    """Medical knowledge benchmarks scored by log-likelihood, base vs candidate."""

    enabled: bool = Field(False, description="Score both models on the benchmark files (report section 'knowledge', metrics knowledge.<name>).")
    files: list[BenchmarkFile] = Field(default_factory=default_files, description="Benchmark files (add your own: name, path, template, few_shot_path, subject_field).")
    sample: int | None = Field(None, ge=1, description="Questions per benchmark, a fixed pseudo-random sample (by item id); null = every question (slow on CPU).")
    few_shot: int = Field(0, ge=0, le=10, description="Solved examples before each question, from the file's few_shot_path (0 = zero-shot).")
    bootstrap: int = Field(1000, ge=100, le=100000, description="Bootstrap resamples for the confidence intervals.")
    confidence: float = Field(0.95, gt=0.5, lt=1.0, description="Confidence level of the intervals.")
    seed: int = Field(0, description="Seed of the sample, the few-shot draw and the bootstrap.")
    generation: bool = Field(False, description="Also ask each question by generation (options listed, the model answers with a letter) and report that accuracy.")
    max_batch_tokens: int = Field(8192, ge=256, description="Tokens (padded) per forward pass when scoring.")
    cache_dir: str | None = Field(None, description="Per-model score cache (keyed by the model's fingerprint and the exact request); null = <workdir>/cache/benchmarks.")

    @field_validator("files")
    @classmethod
    def _unique(cls, v: list[BenchmarkFile]) -> list[BenchmarkFile]:
        names = [f.name for f in v]
        dup = sorted({n for n in names if names.count(n) > 1})
        if dup:
            raise ValueError(f"benchmark names must be unique; '{dup[0]}' appears twice")
        return v


# --- items --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Item:
    item_id: str
    question: str
    options: tuple[tuple[str, str], ...]  # (letter, text) in file order
    answer: str  # the correct letter
    subject: str | None = None

    @property
    def gold(self) -> int:
        return [k for k, _ in self.options].index(self.answer)


@dataclass
class Benchmark:
    spec: BenchmarkFile
    items: list[Item]
    quarantine: list[dict] = field(default_factory=list)  # {"line": n, "reason": "..."}
    total_lines: int = 0
    few_shot: list[Item] = field(default_factory=list)

    @property
    def name(self) -> str:
        return self.spec.name


def _item(obj, line_no: int, subject_field: str | None) -> Item | str:
    """The item of one parsed line, or the reason it cannot be scored."""
    if not isinstance(obj, dict):
        return "not a JSON object"
    q = obj.get("question")
    if not isinstance(q, str) or not q.strip():
        return "'question' is missing or empty"
    opts = obj.get("options")
    if not isinstance(opts, dict) or len(opts) < 2:
        return "'options' must be an object with at least two options"
    if any(not isinstance(k, str) or not isinstance(v, (str, int, float)) or not str(v).strip() for k, v in opts.items()):
        return "'options' has an empty or non-text option"
    ans = obj.get("answer_idx")
    if ans not in opts:
        return f"'answer_idx' is not one of the option keys ({', '.join(map(str, opts))})"
    rid = obj.get("realidx", obj.get("id"))
    item_id = str(rid) if rid is not None and str(rid).strip() else f"line-{line_no}"
    subject = obj.get(subject_field) if subject_field else None
    return Item(item_id, q.strip(), tuple((str(k), str(v).strip()) for k, v in opts.items()), str(ans),
                str(subject) if subject is not None else None)


def read_items(path: str | Path, subject_field: str | None = "subject", *, what: str = "benchmarks.files[].path") -> tuple[list[Item], list[dict], int]:
    """(items, quarantined lines, lines read) of a JSONL question file; no text of a bad line is kept."""
    p = Path(path)
    if not p.is_file():
        raise InputPathError(f"{what}: benchmark file '{p}' does not exist.",
                             fix="point it at a JSONL file of questions (e.g. ../shared/data/medical-mcq/medmcqa-test.jsonl).")
    items, bad, seen, n = [], [], set(), 0
    with p.open(encoding="utf-8", errors="replace") as f:
        for n, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                obj = json.loads(line)
            except json.JSONDecodeError as err:
                bad.append({"line": n, "reason": f"invalid JSON ({err.msg} at column {err.colno})"})
                continue
            got = _item(obj, n, subject_field)
            if isinstance(got, str):
                bad.append({"line": n, "reason": got})
            elif got.item_id in seen:
                bad.append({"line": n, "reason": f"duplicate item id '{got.item_id}'"})
            else:
                seen.add(got.item_id)
                items.append(got)
    return items, bad, n


def _rank(item_id: str, seed: int) -> str:
    return hashlib.sha1(f"{seed}:{item_id}".encode()).hexdigest()


def load_benchmark(spec: BenchmarkFile, *, sample: int | None = None, few_shot: int = 0, seed: int = 0) -> Benchmark:
    """Read a benchmark (quarantining bad lines), take its sample and its few-shot examples."""
    items, bad, total = read_items(spec.path, spec.subject_field, what=f"benchmarks.files[{spec.name}].path")
    if sample is not None and sample < len(items):
        keep = set(sorted((i.item_id for i in items), key=lambda x: _rank(x, seed))[:sample])
        items = [i for i in items if i.item_id in keep]
    bench = Benchmark(spec, items, bad, total)
    if few_shot:
        if not spec.few_shot_path:
            raise InputPathError(f"benchmarks.few_shot is {few_shot} but benchmark '{spec.name}' has no few_shot_path.",
                                 fix="set its few_shot_path to the file's dev/train part, or few_shot: 0.")
        pool, _, _ = read_items(spec.few_shot_path, spec.subject_field, what=f"benchmarks.files[{spec.name}].few_shot_path")
        scored = {i.question for i in items}
        pool = [i for i in pool if i.question not in scored]  # never an example that is also scored
        bench.few_shot = sorted(pool, key=lambda i: _rank(i.item_id, seed))[:few_shot]
    return bench


# --- prompts ------------------------------------------------------------------------------------


def context_of(item: Item, template: str) -> str:
    if template == "letters":
        listed = "\n".join(f"{k}. {v}" for k, v in item.options)
        return f"Question: {item.question}\n{listed}\nAnswer:"
    return f"Question: {item.question}\nAnswer:"


def continuations(item: Item, template: str) -> list[str]:
    if template == "letters":
        return [f" {k}" for k, _ in item.options]
    return [f" {v}" for _, v in item.options]


def full_context(bench: Benchmark, item: Item) -> str:
    t = bench.spec.template
    shots = [context_of(ex, t) + continuations(ex, t)[ex.gold] for ex in bench.few_shot]
    return FEW_SHOT_DELIMITER.join([*shots, context_of(item, t)])


def request_id(bench: str, item_id: str, option: int) -> str:
    return f"{bench}/{item_id}/{option}"


def requests(bench: Benchmark) -> list[dict]:
    """One (context, continuation) request per option of every item."""
    out = []
    for item in bench.items:
        ctx = full_context(bench, item)
        for k, cont in enumerate(continuations(item, bench.spec.template)):
            out.append({"request_id": request_id(bench.name, item.item_id, k), "context": ctx, "continuation": cont})
    return out


def generation_prompt(item: Item) -> str:
    listed = "\n".join(f"{k}. {v}" for k, v in item.options)
    return (f"{item.question}\n\n{listed}\n\n"
            f"Answer with the letter of the correct option ({', '.join(k for k, _ in item.options)}) only.")


def parse_letter(answer: str, letters: list[str]) -> str | None:
    """The option letter a generated answer gives: the first standalone letter of the options."""
    import re

    m = re.search(r"(?<![A-Za-z])(" + "|".join(map(re.escape, letters)) + r")(?![A-Za-z])", str(answer))
    return m.group(1) if m else None


# --- metrics ------------------------------------------------------------------------------------


def choose(scores: list[float], lengths: list[int] | None = None) -> int:
    """Index of the best option (the first of ties, as numpy's argmax); ``lengths`` normalises by bytes."""
    vals = [s / max(n, 1) for s, n in zip(scores, lengths)] if lengths is not None else list(scores)
    return max(range(len(vals)), key=lambda i: (vals[i], -i))


def _percentile(sorted_vals: list[float], q: float) -> float:
    if not sorted_vals:
        return float("nan")
    pos = q * (len(sorted_vals) - 1)
    lo, hi = math.floor(pos), math.ceil(pos)
    return sorted_vals[lo] + (sorted_vals[hi] - sorted_vals[lo]) * (pos - lo)


def bootstrap_ci(correct: list[int], *, resamples: int, confidence: float, seed: int) -> tuple[float, float]:
    """Percentile bootstrap interval of the mean of 0/1 outcomes."""
    import numpy as np

    n = len(correct)
    if n == 0:
        return float("nan"), float("nan")
    rng = np.random.default_rng(seed)
    arr = np.asarray(correct, dtype=np.float64)
    means = sorted(arr[rng.integers(0, n, size=(resamples, n))].mean(axis=1).tolist())
    a = (1 - confidence) / 2
    return _percentile(means, a), _percentile(means, 1 - a)


def paired_ci(cand: list[int], base: list[int], *, resamples: int, confidence: float, seed: int) -> tuple[float, float, float]:
    """(candidate - baseline accuracy, interval low, high): both resampled on the same items."""
    import numpy as np

    n = len(cand)
    if n == 0 or n != len(base):
        return float("nan"), float("nan"), float("nan")
    diff = np.asarray(cand, dtype=np.float64) - np.asarray(base, dtype=np.float64)
    rng = np.random.default_rng(seed)
    means = sorted(diff[rng.integers(0, n, size=(resamples, n))].mean(axis=1).tolist())
    a = (1 - confidence) / 2
    return float(diff.mean()), _percentile(means, a), _percentile(means, 1 - a)


def accuracy_block(correct: list[int], cfg: BenchmarksConfig, seed_key: str) -> dict:
    n = len(correct)
    low, high = bootstrap_ci(correct, resamples=cfg.bootstrap, confidence=cfg.confidence,
                             seed=cfg.seed + int(hashlib.sha1(seed_key.encode()).hexdigest()[:8], 16))
    return {"n": n, "correct": int(sum(correct)), "accuracy": (sum(correct) / n) if n else None,
            "ci_low": None if math.isnan(low) else low, "ci_high": None if math.isnan(high) else high}


def grade(bench: Benchmark, scores: dict[str, float], *, normalize: bool = False) -> dict[str, int]:
    """item id -> 1 if the model's best option is the answer (0 otherwise)."""
    out = {}
    for item in bench.items:
        conts = continuations(item, bench.spec.template)
        vals = [scores[request_id(bench.name, item.item_id, k)] for k in range(len(conts))]
        lengths = [len(c.encode("utf-8")) for c in conts] if normalize else None
        out[item.item_id] = int(choose(vals, lengths) == item.gold)
    return out


def summarize(bench: Benchmark, correct: dict[str, int], correct_norm: dict[str, int], cfg: BenchmarksConfig) -> dict:
    """Accuracy, interval, acc_norm and per-subject accuracy of one model on one benchmark."""
    order = [i.item_id for i in bench.items]
    block = accuracy_block([correct[i] for i in order], cfg, bench.name)
    block["acc_norm"] = (sum(correct_norm[i] for i in order) / len(order)) if order else None
    subjects: dict[str, list[str]] = {}
    for item in bench.items:
        if item.subject is not None:
            subjects.setdefault(item.subject, []).append(item.item_id)
    if subjects:
        block["subjects"] = {s: accuracy_block([correct[i] for i in ids], cfg, f"{bench.name}/{s}")
                             for s, ids in sorted(subjects.items())}
    return block


__all__ = ["Benchmark", "BenchmarkFile", "BenchmarksConfig", "Item", "accuracy_block", "bootstrap_ci", "choose",
           "default_files", "full_context", "grade", "load_benchmark", "paired_ci", "read_items", "requests", "summarize"]
