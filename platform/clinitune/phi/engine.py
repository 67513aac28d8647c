"""The de-identification engine: detect PHI spans in a note, then redact them.

Two detectors: ``ensemble`` (the learned tagger of :mod:`clinitune.phi.tagger` unioned with the
rules, recall first) and ``rules`` (patterns, context rules and lexicons only; faster). Both read
the same text and go through the same merge, so curation, ``clinitune deid`` and the serving guard
redact alike. Notes are processed in batches (:meth:`PhiEngine.detect_many`) so the tagger runs
batched.

``PhiEngine`` is cheap to pickle (lexicons and tagger live in per-process caches and are loaded
lazily), so Ray Data can ship one to every actor. It never logs or raises with note text: a note it
cannot process raises :class:`PhiProcessingError` naming the note id and a reason.
"""

from __future__ import annotations

import os
import re
from typing import Literal, Sequence

from pydantic import Field

from clinitune.config import StrictModel
from clinitune.errors import UserError
from clinitune.phi import patterns
from clinitune.phi.context import ContextRules, tokenize
from clinitune.phi.lexicons import load as load_lexicons
from clinitune.phi.structure import StructureRules
from clinitune.phi.types import ALL_PHI_TYPES, Span

RedactMode = Literal["tag", "mask", "surrogate"]
DEFAULT_KEY_ENV = "CLINITUNE_DEID_KEY"

# Placeholders written by tag mode; never re-detected, so tagging twice changes nothing.
_TAG = re.compile(r"\[(?:" + "|".join(ALL_PHI_TYPES) + r")\]")
# Type priority when spans of different kinds overlap (more specific first).
_PRIORITY = {t: i for i, t in enumerate([
    "EMAIL", "URL", "IP", "SSN", "MRN", "HEALTH_PLAN", "ACCOUNT", "LICENSE", "VEHICLE", "DEVICE", "BIOMETRIC",
    "FAX", "PHONE", "ZIP", "DATE", "AGE", "YEAR", "ID", "NAME", "LOCATION",
])}


class PhiProcessingError(Exception):
    """A note the engine cannot process. The message names the note id and the reason, never text."""

    def __init__(self, note_id: str | None, reason: str):
        self.note_id = note_id
        self.reason = reason
        super().__init__(f"note '{note_id if note_id is not None else '<unknown>'}' cannot be de-identified: {reason}")


class PhiConfig(StrictModel):
    """How the engine detects and redacts PHI."""

    min_score: float = Field(0.0, ge=0.0, le=1.0, description="Drop detected spans scoring below this (0 keeps all: recall first).")
    types: list[str] | None = Field(None, description="Only report these PHI kinds (PhiType values); None means all 18 Safe Harbor kinds.")
    max_chars: int = Field(2_000_000, gt=0, description="Notes longer than this many characters are refused with PhiProcessingError.")
    max_control_ratio: float = Field(0.1, ge=0.0, le=1.0, description="Refuse notes whose share of control/undecodable characters exceeds this (binary data).")
    secret_key: str | None = Field(None, description="Secret key for surrogate mode; prefer secret_key_env so the key is not written in a config file.")
    secret_key_env: str = Field(DEFAULT_KEY_ENV, description="Environment variable holding the surrogate key when secret_key is not set.")
    max_date_shift_days: int = Field(365, ge=1, le=3650, description="Surrogate dates move back by 1..this many days, one offset per patient.")
    mask_char: str = Field("*", min_length=1, max_length=1, description="Character used by mask mode.")
    detector: Literal["ensemble", "rules"] = Field("ensemble", description="'ensemble' (the default): the learned tagger shipped in the package (or model_dir's) unioned with the rules, recall first; 'rules': patterns, context rules and lexicons only (~10x faster, lower recall on unseen text).")
    model_dir: str | None = Field(None, description="Directory of a trained PHI tagger (clinitune phi train); None: the tagger shipped in the package.")
    device: Literal["auto", "cpu", "cuda"] = Field("auto", description="Where the tagger runs: 'auto' takes a visible CUDA GPU, else the CPU.")
    precision: Literal["auto", "fp32", "bf16", "fp16", "int8"] = Field("auto", description="Tagger arithmetic: 'auto' is bf16 on GPUs and on CPUs with native bf16 (AMX/AVX512-BF16), int8 dynamic quantization on other CPUs.")
    model_batch_size: int = Field(32, ge=1, le=4096, description="Tagger windows per forward pass.")

    def resolve_key(self) -> bytes:
        key = self.secret_key or os.environ.get(self.secret_key_env)
        if not key:
            raise UserError(
                f"surrogate redaction needs a secret key: environment variable {self.secret_key_env} is not set.",
                fix=f"export {self.secret_key_env}=<a long random secret> (keep it; the same key reproduces the same surrogates).",
            )
        return key.encode("utf-8")


class PhiEngine:
    """Detects the 18 Safe Harbor identifier kinds and redacts them (tag, mask or surrogate)."""

    def __init__(self, config: PhiConfig | None = None):
        self.config = config or PhiConfig()
        if self.config.types is not None:
            bad = [t for t in self.config.types if t not in ALL_PHI_TYPES]
            if bad:
                raise UserError(f"PhiConfig.types: unknown PHI kind(s) {bad}.", fix=f"use values from {list(ALL_PHI_TYPES)}.")
        self._rules: ContextRules | None = None
        self._structure: StructureRules | None = None
        self._tagger = None

    # Pickle only the config: lexicons and the tagger are reloaded (once per process) on first use.
    def __getstate__(self) -> dict:
        return {"config": self.config}

    def __setstate__(self, state: dict) -> None:
        self.config = state["config"]
        self._rules = None
        self._structure = None
        self._tagger = None

    @property
    def rules(self) -> ContextRules:
        if self._rules is None:
            self._rules = ContextRules(load_lexicons())
        return self._rules

    @property
    def structure(self) -> StructureRules:
        if self._structure is None:
            self._structure = StructureRules(load_lexicons())
        return self._structure

    @property
    def tagger(self):
        """The learned tagger (ensemble mode); a :class:`~clinitune.phi.tagger.PhiModelError` when it cannot load."""
        if self._tagger is None:
            from clinitune.phi.tagger import shared_tagger

            c = self.config
            self._tagger = shared_tagger(c.model_dir, c.device, c.precision, c.model_batch_size)
        return self._tagger

    def warm_up(self) -> "PhiEngine":
        """Load the lexicons (and the tagger) now, e.g. in an actor's constructor, rather than on the first note."""
        _ = self.rules, self.structure
        if self.config.detector == "ensemble":
            from clinitune.phi.ensemble import drug_words

            _ = self.tagger, drug_words()
        return self

    # --- detection --------------------------------------------------------------------------
    def _check(self, text: object, note_id: str | None) -> str:
        if text is None:
            return ""
        if isinstance(text, bytes):
            raise PhiProcessingError(note_id, "text is bytes, not decoded text (decode it to str first)")
        if not isinstance(text, str):
            raise PhiProcessingError(note_id, f"text is of type {type(text).__name__}, expected str")
        if len(text) > self.config.max_chars:
            raise PhiProcessingError(note_id, f"text has {len(text)} characters, over the limit of {self.config.max_chars} (PhiConfig.max_chars)")
        if text:
            bad = sum(1 for c in text if (c < " " and c not in "\t\n\r\f\v") or "\ud800" <= c <= "\udfff" or c == "\ufffd")
            if bad > 8 and bad / len(text) > self.config.max_control_ratio:
                raise PhiProcessingError(note_id, f"text looks binary ({bad} control or undecodable characters of {len(text)})")
        return text

    def detect(self, text: str, note_id: str | None = None) -> list[Span]:
        """PHI spans of ``text``: sorted, non-overlapping, offsets in characters (end exclusive)."""
        out = self.detect_many([text], [note_id])[0]
        if isinstance(out, PhiProcessingError):
            raise out
        return out

    def detect_many(self, texts: Sequence[object], note_ids: Sequence[str | None] | None = None) -> list[list[Span] | PhiProcessingError]:
        """PHI spans of every text, in order; a note that cannot be processed gets its
        :class:`PhiProcessingError` in its place (the others are unaffected). The tagger reads
        all notes of the call in one batched pass."""
        ids = list(note_ids) if note_ids is not None else [None] * len(texts)
        out: list[list[Span] | PhiProcessingError] = []
        todo: list[int] = []
        scans: list[str] = []
        raws: list[str] = []
        for i, (text, nid) in enumerate(zip(texts, ids)):
            try:
                checked = self._check(text, nid)
            except PhiProcessingError as err:
                out.append(err)
                continue
            out.append([])
            if checked.strip():
                todo.append(i)
                raws.append(checked)
                scans.append(_hide_tags(checked))
        if not todo:
            return out
        # The tagger reads the note as written: an existing tag is the context it sees in
        # de-identified text, where blanks in its place would read as a line break (a header).
        tagged = self._tag(raws) if self.config.detector == "ensemble" else [None] * len(scans)
        for i, raw, scan, tag in zip(todo, raws, scans, tagged):
            try:
                out[i] = self._finish(self._detect(scan, tag, _tag_spans(raw)))
            except RecursionError:
                out[i] = PhiProcessingError(ids[i], "text structure too deep to scan")
            except MemoryError:
                out[i] = PhiProcessingError(ids[i], "out of memory while scanning the text")
        return out

    def _tag(self, scans: list[str]):
        try:
            return self.tagger.predict(scans)
        except MemoryError:  # a batch too large for this process: one note at a time
            return [self.tagger.predict([s])[0] for s in scans]

    def _detect(self, scan: str, tagged=None, protected: list[tuple[int, int]] = ()) -> list[Span]:
        hits = list(patterns.all_patterns(scan))
        hits.extend(self.structure.detect(scan))
        toks = tokenize(scan)
        hits.extend(self.rules.detect(scan, toks))
        found = _merge(scan, hits)
        if tagged is None:
            return found
        from clinitune.phi.ensemble import extend_names, outside, typed, union

        hits = outside(tagged.hits, protected)
        merged = _merge(scan, union(found, typed(scan, hits, self.rules.lex)))
        return _merge(scan, extend_names(scan, merged, toks, tagged, self.rules.lex))

    def _finish(self, spans: list[Span]) -> list[Span]:
        cfg = self.config
        if cfg.min_score > 0:
            spans = [s for s in spans if s.score >= cfg.min_score]
        if cfg.types is not None:
            keep = set(cfg.types)
            spans = [s for s in spans if s.type in keep]
        return spans

    # --- redaction ----------------------------------------------------------------------------
    def redact(self, text: str, *, mode: RedactMode = "tag", patient_id: str | None = None,
               note_id: str | None = None):
        """Replace every detected span; returns a :class:`~clinitune.phi.redact.Redaction`."""
        from clinitune.phi.redact import redact_spans

        if mode not in ("tag", "mask", "surrogate"):
            raise UserError(f"redaction mode '{mode}' is not supported.", fix="use one of: tag, mask, surrogate.")
        out = self.redact_many([text], mode=mode, patient_ids=[patient_id], note_ids=[note_id])[0]
        if isinstance(out, PhiProcessingError):
            raise out
        return out

    def redact_many(self, texts: Sequence[object], *, mode: RedactMode = "tag",
                    patient_ids: Sequence[str | None] | None = None, note_ids: Sequence[str | None] | None = None):
        """:meth:`redact` for a batch: a :class:`Redaction` or a :class:`PhiProcessingError` per note."""
        from clinitune.phi.redact import redact_spans

        if mode not in ("tag", "mask", "surrogate"):
            raise UserError(f"redaction mode '{mode}' is not supported.", fix="use one of: tag, mask, surrogate.")
        key = self.config.resolve_key() if mode == "surrogate" else b""
        pids = list(patient_ids) if patient_ids is not None else [None] * len(texts)
        nids = list(note_ids) if note_ids is not None else [None] * len(texts)
        out = []
        for text, spans, pid, nid in zip(texts, self.detect_many(texts, nids), pids, nids):
            if isinstance(spans, PhiProcessingError):
                out.append(spans)
                continue
            text = "" if text is None else text
            out.append(redact_spans(text, spans, mode=mode, key=key, patient_id=pid, note_id=nid, config=self.config))
        return out


def _tag_spans(text: str) -> list[tuple[int, int]]:
    """Where the text holds existing ``[KIND]`` tags (redacted before): never PHI again."""
    return [m.span() for m in _TAG.finditer(text)]


def _hide_tags(text: str) -> str:
    """Existing ``[KIND]`` tags become line breaks (same length): neither re-detected nor read as context by the rules."""
    protected = _tag_spans(text)
    if not protected:
        return text
    chars = list(text)
    for s, e in protected:
        chars[s:e] = "\n" * (e - s)
    return "".join(chars)


_PLACE_JOIN = re.compile(r"[ \t]{1,2}|\.[ \t]?|-")
_JOIN = re.compile(r"[ \t]{0,2}|[ \t]?[-,.'][ \t]?|\.[ \t]{0,2}")


def _merge(text: str, hits: list[tuple[int, int, str, float]]) -> list[Span]:
    """Resolve overlaps (longest, then most specific kind wins) and join adjacent same-kind spans."""
    hits = [h for h in hits if 0 <= h[0] < h[1] <= len(text)]
    hits.sort(key=lambda h: (h[0], -(h[1] - h[0]), _PRIORITY.get(h[2], 99)))
    out: list[list] = []
    for s, e, t, sc in hits:
        if out and s < out[-1][1] and t == "ZIP" and out[-1][2] == "LOCATION" and e >= out[-1][1] and s > out[-1][0]:
            # "..., TX 78701": the ZIP keeps its own span (HIPAA's 3-digit rule applies to it)
            out[-1][1] = s
            while out[-1][1] > out[-1][0] and text[out[-1][1] - 1] in " \t,":
                out[-1][1] -= 1
            out.append([s, e, t, sc])
            continue
        if out and s < out[-1][1]:
            last = out[-1]
            # overlap: extend the earlier span; keep the more specific kind of the two
            if e > last[1]:
                last[1] = e
            if _PRIORITY.get(t, 99) < _PRIORITY.get(last[2], 99) and (e - s) >= (last[1] - last[0]) * 0.5:
                last[2] = t
            last[3] = max(last[3], sc)
            continue
        if out and out[-1][2] in ("NAME", "LOCATION") and t in ("NAME", "LOCATION"):
            g = text[out[-1][1]:s]
            if (out[-1][2] == t and _JOIN.fullmatch(g)) or (out[-1][2] != t and _PLACE_JOIN.fullmatch(g)):
                # "Calvert" (a surname too) + "Hospital": one place
                out[-1][1] = e
                out[-1][2] = t if t == out[-1][2] else "LOCATION"
                out[-1][3] = max(out[-1][3], sc)
                continue
        out.append([s, e, t, sc])
    return [Span(s, e, t, float(sc)) for s, e, t, sc in out]
