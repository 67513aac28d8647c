"""JSONL records and FHIR Bulk Data NDJSON, read as line-aligned byte ranges.

A task owns the lines that *start* inside ``[start, end)``. Lines are numbered 1-based over the
whole file (every ``\\n`` counts, blank lines included); the location is ``path:LINE``. A task
learns its first line number from ``newlines_before`` (newlines in ``[0, start)``) when the
planner supplied it, else by counting the newlines before ``start`` itself (a sequential read
of the file's head: fine for files of a few GiB, quadratic beyond; see
``tasks.number_line_tasks`` for the linear two-pass alternative).

Physical records: every line that is not blank. A blank line (empty or ASCII whitespace only)
is not a record and produces no row. A line longer than ``line_limit(cfg)`` bytes is not
loaded: it becomes a ``text_too_long`` row. Encodings must be ASCII-compatible (UTF-8,
Latin-1, ...): lines are split on the byte ``\\n``.
"""

from __future__ import annotations

import json
from typing import Any, Iterator

from clinitune.curate.readers.config import ReaderConfig
from clinitune.curate.readers.dates import _type_name
from clinitune.curate.readers.fhir import NOTE_RESOURCES, note_fields
from clinitune.curate.readers.records import RawRecord, file_tag, map_source_record, quarantined
from clinitune.errors import RecordError
from clinitune.schema import Q_INVALID_ENCODING, Q_MALFORMED, Q_TEXT_TOO_LONG

_BLOCK = 4 * 1024 * 1024
_BOM = b"\xef\xbb\xbf"


def line_limit(cfg: ReaderConfig) -> int:
    """Longest line (bytes) that is parsed; room for base64 text and other attachments."""
    return max(64 * 1024 * 1024, 16 * cfg.max_text_chars)


def count_newlines(f, start: int, stop: int) -> int:
    """Newlines in bytes ``[start, stop)`` of the open binary file ``f``."""
    f.seek(start)
    n, left = 0, stop - start
    while left > 0:
        block = f.read(min(_BLOCK, left))
        if not block:
            break
        n += block.count(b"\n")
        left -= len(block)
    return n


def _aligned_start(f, start: int) -> int:
    """Offset of the first line that starts at or after ``start``."""
    if start <= 0:
        return 0
    f.seek(start - 1)
    if f.read(1) == b"\n":
        return start
    f.readline()
    return f.tell()


def iter_lines(task: dict[str, Any], cfg: ReaderConfig) -> Iterator[tuple[int, bytes | None]]:
    """``(line_no, line bytes | None when over the limit)`` for the task's non-blank lines."""
    start, end = int(task["start"]), int(task["end"])
    limit = line_limit(cfg)
    with open(task["path"], "rb") as f:
        pos = _aligned_start(f, start)
        if pos >= end:
            return
        before = task.get("newlines_before")
        if before is None:
            first = 1 + count_newlines(f, 0, pos)
        else:
            first = 1 + int(before) + count_newlines(f, start, pos)
        f.seek(pos)
        line_no = first
        while pos < end:
            line = f.readline(limit + 1)
            if not line:
                break
            if len(line) > limit and not line.endswith(b"\n"):
                while True:  # skip the rest of the over-long line without holding it
                    rest = f.readline(_BLOCK)
                    if not rest or rest.endswith(b"\n"):
                        break
                yield line_no, None
            elif line.strip():
                yield line_no, (line[3:] if pos == 0 and line.startswith(_BOM) else line)
            pos = f.tell()
            line_no += 1


def _parse(line: bytes, cfg: ReaderConfig) -> Any:
    """Decoded JSON value of one line; RecordError for bad bytes or bad JSON."""
    try:
        text = line.decode(cfg.encoding)
    except UnicodeDecodeError:
        raise RecordError(Q_INVALID_ENCODING, f"line is not valid {cfg.encoding}") from None
    try:
        return json.loads(text)
    except json.JSONDecodeError as err:
        raise RecordError(Q_MALFORMED, f"line is not valid JSON ({err.msg} at column {err.colno})") from None
    except (ValueError, RecursionError):
        raise RecordError(Q_MALFORMED, "line is not valid JSON (too deeply nested or invalid)") from None


def iter_records(task: dict[str, Any], cfg: ReaderConfig) -> Iterator[RawRecord]:
    path, fhir = task["path"], task["format"] == "ndjson"
    tag, mapping = file_tag(path), cfg.resolved_mapping()
    for line_no, line in iter_lines(task, cfg):
        loc, fid = f"{path}:{line_no}", f"{tag}-L{line_no}"
        if line is None:
            yield quarantined(loc, fid, Q_TEXT_TOO_LONG, f"line is longer than the {line_limit(cfg)}-byte line limit")
            continue
        obj: Any = None
        try:
            obj = _parse(line, cfg)
            if fhir:
                fields, attrs, names = note_fields(obj, cfg)
                yield RawRecord(loc, fid, fields, attrs, names)
            elif isinstance(obj, dict):
                fields, attrs = map_source_record(obj, mapping, cfg.passthrough_fields)
                yield RawRecord(loc, fid, fields, attrs, mapping)
            else:
                yield quarantined(loc, fid, Q_MALFORMED, f"line is a JSON {_type_name(obj)}, expected an object")
        except RecordError as err:
            is_doc = fhir and isinstance(obj, dict) and obj.get("resourceType") in NOTE_RESOURCES
            note_id = obj.get("id") if is_doc else None
            yield quarantined(loc, fid, err.reason, err.detail, note_id)


def count_records(task: dict[str, Any], cfg: ReaderConfig) -> int:
    return sum(1 for _ in iter_lines(task, cfg))
