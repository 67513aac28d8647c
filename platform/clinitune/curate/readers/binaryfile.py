"""Binary NDJSON files of a FHIR export (``Binary.ndjson``): content that notes point at.

A Binary line that some note of the export points at is part of that note and yields no record
here. A line that no note points at is one quarantined record (``unreferenced_binary``), and a
line that is not valid JSON (or not a Binary with an id, so nothing can point at it) is
``malformed_record``, each located ``path:LINE``. The set of referenced ids comes from the
export context (``readers.export``) the driver built; without one, every Binary counts as
unreferenced.
"""

from __future__ import annotations

from typing import Any, Iterator

from clinitune.curate.readers import export
from clinitune.curate.readers.config import ReaderConfig
from clinitune.curate.readers.records import RawRecord, file_tag, quarantined
from clinitune.schema import Q_MALFORMED, Q_UNREFERENCED_BINARY


def _verdicts(task: dict[str, Any]) -> Iterator[tuple[int, str, str]]:
    ctx = export.current()
    referenced = ctx.referenced if ctx else frozenset()
    for line_no, _, obj in export._iter_lines(task["path"]):
        if not (isinstance(obj, dict) and obj.get("resourceType") == "Binary" and isinstance(obj.get("id"), str)):
            yield line_no, Q_MALFORMED, "line is not a Binary resource with an id"
        elif obj["id"] not in referenced:
            yield line_no, Q_UNREFERENCED_BINARY, "Binary that no note of the export points at"


def iter_records(task: dict[str, Any], cfg: ReaderConfig) -> Iterator[RawRecord]:
    path = task["path"]
    tag = file_tag(path)
    for line_no, reason, detail in _verdicts(task):
        yield quarantined(f"{path}:{line_no}", f"{tag}-L{line_no}", reason, detail)


def count_records(task: dict[str, Any], cfg: ReaderConfig) -> int:
    return sum(1 for _ in _verdicts(task))
