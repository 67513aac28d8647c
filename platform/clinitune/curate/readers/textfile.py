"""Plain-text notes: one note per ``.txt`` file, one task and one record per file (location ``path``).

* patient_id: the named group ``patient_id`` of ``cfg.txt_patient_pattern`` searched in the
  file's path (default: the directory's name); no match is ``missing_patient_id``.
* note_id: the path relative to the input directory it was found under, without ``.txt``, with
  ``/`` separators (``p001/2020-01-05_progress``); the file name stem for a file named directly.
* note_type and note_date: null. A file larger than the line limit is not loaded (text_too_long).
"""

from __future__ import annotations

import os
import re
from typing import Any, Iterator

from clinitune.curate.readers.config import ReaderConfig
from clinitune.curate.readers.jsonlines import line_limit
from clinitune.curate.readers.records import RawRecord, file_tag, quarantined
from clinitune.schema import Q_INVALID_ENCODING, Q_MISSING_PATIENT, Q_TEXT_TOO_LONG


def note_id_for(path: str, root: str | None) -> str:
    rel = os.path.basename(path)
    if root:
        candidate = os.path.relpath(path, root)
        if not candidate.startswith(".."):
            rel = candidate
    rel = rel.replace(os.sep, "/")
    return rel[:-4] if rel.lower().endswith(".txt") else rel


def iter_records(task: dict[str, Any], cfg: ReaderConfig) -> Iterator[RawRecord]:
    path = task["path"]
    note_id = note_id_for(path, task.get("root"))
    fid = f"{file_tag(path)}-T"
    limit = line_limit(cfg)
    with open(path, "rb") as f:
        raw = f.read(limit + 1)
    if len(raw) > limit:
        yield quarantined(path, fid, Q_TEXT_TOO_LONG, f"file is over the {limit}-byte limit", note_id)
        return
    try:
        text = raw.decode(cfg.decoding())
    except UnicodeDecodeError:
        yield quarantined(path, fid, Q_INVALID_ENCODING, f"file is not valid {cfg.encoding}", note_id)
        return
    m = re.search(cfg.txt_patient_pattern, path)
    if not (m and m.group("patient_id")):
        detail = "file path does not match reader.txt_patient_pattern (no patient_id group)"
        yield quarantined(path, fid, Q_MISSING_PATIENT, detail, note_id)
        return
    fields = {"note_id": note_id, "text": text, "patient_id": m.group("patient_id")}
    yield RawRecord(path, fid, fields, {}, {"text": "file content"})


def count_records(task: dict[str, Any], cfg: ReaderConfig) -> int:
    return 1
