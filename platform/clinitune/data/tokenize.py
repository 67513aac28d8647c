"""Chat examples -> token ids with the loss masked to the assistant turns, optionally packed.

``Tokenize`` is a picklable pandas-batch callable run by Ray Data ``map_batches`` on the workers.
For each assistant turn ``i`` the chat template is rendered for ``messages[:i]`` with the
generation prompt and for ``messages[:i+1]``; the text between the two is the target and
everything else (system, user turns, template markup) gets label ``-100``. The template must
render conversations so that each such prefix is a prefix of the longer rendering (true of
ChatML, Llama 3, Mistral and Qwen templates); when it is not, the example is counted as
``template_mismatch`` rather than trained on wrong labels.

Output columns: ``example_ids`` (list), ``status``, ``input_ids``, ``labels`` and ``lengths``
(the length of each example in the sequence: one entry, or several when packed), plus counts.
Rows with a status other than ``ok`` keep empty token lists so the manifest can count them.
"""

from __future__ import annotations

import json
import numpy as np
import pandas as pd

from clinitune.models.chat import IGNORE_INDEX, load_tokenizer, render_segments

STATUS_OK = "ok"


def pack_first_fit(lengths: list[int], capacity: int) -> list[list[int]]:
    """Indices grouped into bins of total length <= capacity (first fit, longest first; deterministic)."""
    order = sorted(range(len(lengths)), key=lambda i: (-lengths[i], i))
    bins: list[list[int]] = []
    room: list[int] = []
    for i in order:
        for b, r in enumerate(room):
            if lengths[i] <= r:
                bins[b].append(i)
                room[b] -= lengths[i]
                break
        else:
            bins.append([i])
            room.append(capacity - lengths[i])
    for b in bins:
        b.sort()
    bins.sort(key=lambda b: b[0])
    return bins


class Tokenize:
    """Ray Data batch UDF: builder output (example_id, messages, status) -> token rows."""

    def __init__(self, model_dir: str, max_seq_len: int, overlong: str = "drop", packing: bool = False):
        self.model_dir = model_dir
        self.max_seq_len = int(max_seq_len)
        self.overlong = overlong
        self.packing = packing

    def _encode(self, tok, messages_json: str) -> tuple[str, list[int], list[int]]:
        try:
            messages = json.loads(messages_json)
        except (TypeError, json.JSONDecodeError):
            return "bad_messages", [], []
        segments = render_segments(tok, messages)
        if segments is None:
            return "template_mismatch", [], []
        ids: list[int] = []
        labels: list[int] = []
        encoded = tok([text for text, _ in segments], add_special_tokens=False)["input_ids"]
        for (_, target), piece in zip(segments, encoded):
            ids.extend(piece)
            labels.extend(piece if target else [IGNORE_INDEX] * len(piece))
        if len(ids) > self.max_seq_len:
            if self.overlong == "drop":
                return "too_long", [], []
            ids, labels = ids[: self.max_seq_len], labels[: self.max_seq_len]
        # the first label is never predicted (labels are shifted inside the model)
        if not any(label != IGNORE_INDEX for label in labels[1:]):
            return "no_target", [], []
        return STATUS_OK, ids, labels

    def __call__(self, batch: pd.DataFrame) -> pd.DataFrame:
        tok = load_tokenizer(self.model_dir)
        rows: list[dict] = []
        ok: list[dict] = []
        n = len(batch)
        groups = batch["passage_group"].fillna("").tolist() if "passage_group" in batch.columns else [""] * n
        for ex_id, messages, status, group in zip(batch["example_id"], batch["messages"], batch["status"], groups):
            if status != STATUS_OK:
                rows.append(_row([ex_id], status, [], [], [], [group]))
                continue
            status, ids, labels = self._encode(tok, messages)
            row = _row([ex_id], status, ids, labels, [len(ids)] if ids else [], [group])
            (ok if status == STATUS_OK else rows).append(row)
        if self.packing and ok:
            ok = [_merge([ok[i] for i in group]) for group in pack_first_fit([len(r["input_ids"]) for r in ok], self.max_seq_len)]
        out = pd.DataFrame(ok + rows, columns=list(_row([], "", [], [], [], [])))
        return out


def _row(ids: list, status: str, input_ids: list[int], labels: list[int], lengths: list[int],
         groups: list[str] | None = None) -> dict:
    return {
        "example_ids": [str(i) for i in ids],
        "passage_groups": [str(g or "") for g in (groups or [""] * len(ids))],  # retrieval-aware data: group per example
        "status": status,
        "input_ids": np.asarray(input_ids, dtype=np.int32),
        "labels": np.asarray(labels, dtype=np.int32),
        "lengths": np.asarray(lengths, dtype=np.int32),
        "num_tokens": len(input_ids),
        "num_target_tokens": int(sum(1 for x in labels[1:] if x != IGNORE_INDEX)) if len(labels) else 0,
        "num_examples": len(ids),
    }


def _merge(rows: list[dict]) -> dict:
    ids = [i for r in rows for i in r["example_ids"]]
    merged = _row(ids, STATUS_OK, np.concatenate([r["input_ids"] for r in rows]).tolist(),
                  np.concatenate([r["labels"] for r in rows]).tolist(), [len(r["input_ids"]) for r in rows],
                  [g for r in rows for g in r["passage_groups"]])
    # targets never cross example boundaries: the first token of each example is a prompt token
    merged["num_target_tokens"] = sum(r["num_target_tokens"] for r in rows)
    return merged
