"""CSV files (one task per file: quoted fields may span lines, so a file cannot be split).

The first non-blank row is the header; column names go through the column mapping (MIMIC
preset included). Every later non-blank row is one physical record, located as
``path:row N`` where N counts data records from 1 (header and blank rows excluded; a record
whose quoted text spans several lines counts once). A row is blank when every cell is empty or
whitespace. Bytes invalid in the encoding quarantine only the rows that hold them
(``invalid_encoding``); a decoding failure the reader cannot step over quarantines the rest of
the file as one record located ``path``.
"""

from __future__ import annotations

import csv
import sys
from typing import Any, Iterator

from clinitune.curate.readers.config import ReaderConfig
from clinitune.curate.readers.records import RawRecord, file_tag, map_source_record, quarantined
from clinitune.schema import Q_INVALID_ENCODING, Q_MALFORMED

# Notes are long: the size limit is enforced on the decoded text instead (max_text_chars).
csv.field_size_limit(min(sys.maxsize, 2**31 - 1))

_ERROR = "error"


def iter_rows(task: dict[str, Any], cfg: ReaderConfig) -> Iterator[tuple[int | None, Any, Any]]:
    """``(row_no, header, cells)``, or ``(row_no | None, _ERROR, (reason, detail))`` for a bad record."""
    with open(task["path"], encoding=cfg.decoding(), errors="surrogateescape", newline="") as f:
        reader = csv.reader(f, delimiter=cfg.csv_delimiter)
        header: list[str] | None = None
        row_no = 0
        last_error_line = -1
        while True:
            try:
                cells = next(reader)
            except StopIteration:
                return
            except csv.Error as err:
                if header is None or reader.line_num == last_error_line:
                    yield None, _ERROR, (Q_MALFORMED, f"CSV cannot be parsed ({err})")
                    return
                last_error_line = reader.line_num
                row_no += 1
                yield row_no, _ERROR, (Q_MALFORMED, f"row cannot be parsed as CSV ({err})")
                continue
            except UnicodeDecodeError:
                yield None, _ERROR, (Q_INVALID_ENCODING, f"file is not decodable as {cfg.encoding} after data row {row_no}")
                return
            if all(not c.strip() for c in cells):
                continue
            if header is None:
                header = cells
                continue
            row_no += 1
            yield row_no, header, cells


def iter_records(task: dict[str, Any], cfg: ReaderConfig) -> Iterator[RawRecord]:
    path = task["path"]
    tag, mapping = file_tag(path), cfg.resolved_mapping()
    for row_no, header, cells in iter_rows(task, cfg):
        loc = f"{path}:row {row_no}" if row_no is not None else path
        fid = f"{tag}-R{row_no}" if row_no is not None else f"{tag}-R"
        if header is _ERROR:
            yield quarantined(loc, fid, *cells)
        elif len(cells) != len(header):
            yield quarantined(loc, fid, Q_MALFORMED, f"row has {len(cells)} fields, the header has {len(header)}")
        else:
            fields, attrs = map_source_record(dict(zip(header, cells)), mapping, cfg.passthrough_fields)
            yield RawRecord(loc, fid, fields, attrs, mapping)


def count_records(task: dict[str, Any], cfg: ReaderConfig) -> int:
    return sum(1 for _ in iter_rows(task, cfg))
