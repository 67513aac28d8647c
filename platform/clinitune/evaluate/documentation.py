"""Metrics of documentation tasks (dialogue -> note): ROUGE and clinical facts.

* ROUGE-1, ROUGE-2 and ROUGE-L F-measures from Google's ``rouge-score`` package (the reference
  re-implementation of ROUGE-1.5.5; Porter stemming on), averaged over examples.
* Clinical facts, extracted the same way from reference, output and dialogue with curation's named
  vocabularies (``clinitune.curate.clinical``), never with a model:

  - ``med:<name>`` - a drug name of the ``drug-named-entity-recognition`` lexicon (DrugBank, MeSH,
    MedlinePlus, NHS names; single words);
  - ``problem:<word>`` - a word of the CMS ICD-10-CM titles of chapters A-T (diseases, symptoms,
    findings, injuries, anatomy) as the curation floor keeps them (stop words and coding qualifiers
    left out), plural folded ("lungs" -> "lung"), less the words of section headers ("history",
    "medications": structure, not findings);
  - ``allergy:<name>`` - a drug or ICD word in a sentence about allergies; ``allergy:none`` for "no
    known allergies" / NKDA (then no other allergy fact from that sentence);
  - ``neg:<term>`` - a medication or problem term within five words after a NegEx negation cue in
    the same sentence ("denies chest pain" -> ``neg:chest``, ``neg:pain``).

  ``fact recall`` = reference facts also found in the output / reference facts (micro, over all
  examples; per kind too). ``fact hallucination rate`` = output facts whose term does not occur in
  the dialogue / output facts: a fact the note states that the conversation never mentioned.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache

_SENTENCE = re.compile(r"(?<=[.!?;\n])\s+|\n+")
_WORD = re.compile(r"[a-z][a-z'-]*[a-z]|[a-z]")
_NO_ALLERGY = re.compile(r"\b(?:no known (?:drug )?allerg|nkda\b|nka\b|no allerg|denies (?:any )?allerg|not allergic)", re.I)
NEGATION_WINDOW = 5
KINDS = ("med", "problem", "allergy", "neg")


@lru_cache(maxsize=1)
def _vocab():
    from clinitune.curate.clinical import vocabulary

    return vocabulary()


@lru_cache(maxsize=1)
def _structural() -> frozenset[str]:
    """Words that name a note's structure, not a finding: the section-header vocabulary's words
    ("history", "medications", "review"...) and the generic "drug"."""
    v = _vocab()
    return frozenset({*v.section_words, "drug", "drugs"})


def _terms(words: list[str]) -> list[tuple[str, str]]:
    """(kind, normalised term) of each clinical word, in order."""
    v = _vocab()
    skip = _structural()
    out = []
    for w in words:
        if w in v.drugs:
            out.append(("med", w))
        elif w not in skip:
            d = v._diagnosis_word(w)  # noqa: SLF001 - the floor's own plural folding
            if d and d not in skip:
                out.append(("problem", d))
    return out


def facts(text: str) -> set[str]:
    """The clinical facts of a text (see the module docstring)."""
    v = _vocab()
    found: set[str] = set()
    for sentence in _SENTENCE.split(str(text).lower()):
        words = _WORD.findall(sentence)
        if not words:
            continue
        terms = _terms(words)
        found.update(f"{k}:{t}" for k, t in terms)
        if _NO_ALLERGY.search(sentence):
            found.add("allergy:none")
        elif "allerg" in sentence:
            found.update(f"allergy:{t}" for _, t in terms if t not in ("allergy", "allergic"))
        joined = " ".join(words)
        for cue in v.negations:
            for m in re.finditer(rf"(?<![a-z]){re.escape(cue)}(?![a-z])", joined):
                after = joined[m.end():].split()[:NEGATION_WINDOW]
                found.update(f"neg:{t}" for _, t in _terms(after))
    return found


def _term(fact: str) -> str:
    return fact.split(":", 1)[1]


def supported(fact: str, source_terms: set[str], source_text: str) -> bool:
    """A fact of the output is supported when its term occurs in the dialogue (allergy:none: allergies came up)."""
    if fact == "allergy:none":
        return "allerg" in source_text or bool(_NO_ALLERGY.search(source_text))
    return _term(fact) in source_terms


@dataclass
class FactCounts:
    ref: int = 0
    found: int = 0
    out: int = 0
    unsupported: int = 0


def fact_scores(outputs: list[str], references: list[str], sources: list[str]) -> dict[str, float | None]:
    """Micro fact recall (overall and per kind) and fact hallucination rate."""
    total, per = FactCounts(), {k: FactCounts() for k in KINDS}
    for o, r, s in zip(outputs, references, sources):
        fo, fr = facts(o), facts(r)
        src_terms = {t for _, t in _terms(_WORD.findall(str(s).lower()))} | set(_WORD.findall(str(s).lower()))
        low = str(s).lower()
        for f in fr:
            c = per[f.split(":", 1)[0]]
            hit = f in fo
            c.ref += 1
            c.found += hit
            total.ref += 1
            total.found += hit
        for f in fo:
            c = per[f.split(":", 1)[0]]
            bad = not supported(f, src_terms, low)
            c.out += 1
            c.unsupported += bad
            total.out += 1
            total.unsupported += bad
    scores: dict[str, float | None] = {
        "task.fact_recall": total.found / total.ref if total.ref else None,
        "task.fact_hallucination_rate": total.unsupported / total.out if total.out else 0.0,
    }
    for k, c in per.items():
        scores[f"task.fact_recall.{k}"] = c.found / c.ref if c.ref else None
    return scores


@lru_cache(maxsize=1)
def _scorer():
    from rouge_score import rouge_scorer

    return rouge_scorer.RougeScorer(["rouge1", "rouge2", "rougeL"], use_stemmer=True)


def rouge_scores(outputs: list[str], references: list[str]) -> dict[str, float]:
    """Mean ROUGE-1/2/L F-measures (rouge-score, stemmed)."""
    n = max(len(outputs), 1)
    sums = {"rouge1": 0.0, "rouge2": 0.0, "rougeL": 0.0}
    for o, r in zip(outputs, references):
        s = _scorer().score(str(r), str(o))
        for k in sums:
            sums[k] += s[k].fmeasure
    return {"task.rouge1": sums["rouge1"] / n, "task.rouge2": sums["rouge2"] / n, "task.rouge_l": sums["rougeL"] / n}


def documentation_scores(outputs: list[str], references: list[str], sources: list[str]) -> dict[str, float | None]:
    return {**rouge_scores(outputs, references), **fact_scores(outputs, references, sources)}


__all__ = ["KINDS", "documentation_scores", "fact_scores", "facts", "rouge_scores"]
