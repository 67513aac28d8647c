"""Annotated notes -> token windows with BIO labels, cut the way the tagger reads at inference."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from clinitune.phi.labels import KIND_TAGS, LABEL_ID, OUTSIDE
from clinitune.phi.tagger import windows
from clinitune.phi.training.corpus import GoldNote


@dataclass
class Window:
    input_ids: list[int]  # with [CLS] and [SEP]
    labels: list[int]  # -100 on [CLS]/[SEP]


def token_labels(offsets: list[tuple[int, int]], spans: list[tuple[int, int, str]]) -> list[int]:
    """B-/I- per token overlapping a gold span (B on its first token), O elsewhere."""
    labels = [LABEL_ID[OUTSIDE]] * len(offsets)
    starts = np.array([o[0] for o in offsets], dtype=np.int64)
    ends = np.array([o[1] for o in offsets], dtype=np.int64)
    for s, e, kind in spans:
        lo = int(np.searchsorted(ends, s, side="right"))
        hi = int(np.searchsorted(starts, e, side="left"))
        b, i = KIND_TAGS[kind]
        for t in range(lo, hi):
            if ends[t] > starts[t]:
                labels[t] = b if t == lo else i
    return labels


def note_windows(tokenizer, notes: list[GoldNote], max_length: int, stride: int, *,
                 keep_phi_free: float = 1.0, rng=None) -> list[Window]:
    """Every note cut into windows of at most ``max_length`` tokens (specials included); windows
    without PHI are kept with probability ``keep_phi_free`` (most of a note is not PHI, and the
    tagger learns what is not PHI from far fewer of them)."""
    enc = tokenizer([n.text for n in notes], add_special_tokens=False, return_offsets_mapping=True,
                    return_attention_mask=False, return_token_type_ids=False)
    out = []
    outside = LABEL_ID[OUTSIDE]
    for note, ids, offsets in zip(notes, enc["input_ids"], enc["offset_mapping"]):
        labels = token_labels(offsets, note.spans)
        for s, e in windows(len(ids), max_length - 2, stride):
            if e <= s:
                continue
            if keep_phi_free < 1.0 and all(x == outside for x in labels[s:e]) and rng.random() >= keep_phi_free:
                continue
            out.append(Window([tokenizer.cls_token_id, *ids[s:e], tokenizer.sep_token_id], [-100, *labels[s:e], -100]))
    return out
