"""Malformed records: the faults a curation pipeline must quarantine, one kind per record.

Record-level kinds change the record dict; line-level kinds (broken JSON, invalid UTF-8) are
applied when the record is encoded as a JSONL line. A malformed record carries no gold spans or
labels: it must never reach training. Its kind is listed in the generation manifest by note id,
file and line — never inside the record itself.
"""

from __future__ import annotations

import json
import random

MALFORMED_KINDS = (
    "broken_json",  # the line is not valid JSON
    "text_not_string",  # "text" is a number or a list
    "empty_text",  # "text" is empty or whitespace only
    "missing_patient_id",  # no usable patient_id
    "bad_date",  # note_date cannot be parsed as a date
    "text_too_long",  # "text" is over the size limit
    "invalid_utf8",  # the line holds bytes that are not valid UTF-8
)
OVERSIZE_CHARS = 5 * 2**19 + 7  # 2.5 MiB and a bit: over a 2 MiB (or 2 MB) text limit

_BAD_DATES = ("2019-02-30", "13/45/2019", "yesterday", "20191345", "N/A", "2021-13-01", "31/31/31")


def corrupt_record(record: dict, kind: str, rng: random.Random) -> dict:
    """Apply a record-level fault in place (no-op for line-level kinds); clear gold and labels."""
    record["phi"], record["icd10"], record["dx_spans"] = [], [], []
    text = record["text"]
    if kind == "text_not_string":
        record["text"] = len(text) if rng.random() < 0.5 else text.split("\n")[:4]
    elif kind == "empty_text":
        record["text"] = rng.choice(("", "   ", "\n\t  \n", " \n"))
    elif kind == "missing_patient_id":
        r = rng.random()
        if r < 0.7:
            del record["patient_id"]
        else:
            record["patient_id"] = None if r < 0.85 else ""
    elif kind == "bad_date":
        record["note_date"] = rng.choice(_BAD_DATES)
    elif kind == "text_too_long":
        reps = OVERSIZE_CHARS // (len(text) + 1) + 1
        record["text"] = ("\n".join([text] * reps))[: OVERSIZE_CHARS]
    return record


def encode_record(record: dict) -> bytes:
    """One JSONL line (with its newline). Key order is the record's; output is deterministic."""
    return json.dumps(record, ensure_ascii=False, separators=(", ", ": ")).encode("utf-8") + b"\n"


def corrupt_line(line: bytes, kind: str, rng: random.Random) -> bytes:
    """Apply a line-level fault to an encoded line (returns ``line`` unchanged for other kinds)."""
    body = line.rstrip(b"\n")
    if kind == "broken_json":
        r = rng.random()
        if r < 0.5:  # truncated mid-record (a writer killed half way)
            body = body[: max(40, int(len(body) * rng.uniform(0.3, 0.9)))]
        elif r < 0.75:  # a missing comma between two fields
            i = body.index(b'", "')
            body = body[: i + 1] + b" " + body[i + 3:]
        else:  # single-quoted keys (Python repr pasted as JSON)
            body = body.replace(b'"note_id"', b"'note_id'", 1)
    elif kind == "invalid_utf8":
        start = body.index(b'"text": "') + 9
        bad = rng.choice((b"\xff\xfe", b"\xc3\x28", b"\xa0\xa1", b"\xe2\x28\xa1", b"\x80"))
        # between two plain ASCII characters: never inside an escape sequence or a UTF-8 character
        ok = [i for i in range(start + 1, min(len(body) - 1, start + 400))
              if chr(body[i - 1]).isalnum() and body[i - 1] < 0x80 and body[i] < 0x80]
        pos = rng.choice(ok) if ok else start
        body = body[:pos] + bad + body[pos:]
    return body + b"\n"
