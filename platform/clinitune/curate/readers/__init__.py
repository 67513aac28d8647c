"""Input readers: files in, canonical rows (``schema.RECORD_SCHEMA``) out, nothing lost.

Typical use (the curation pipeline does this on Ray Data)::

    files, skipped = discover_inputs(paths, cfg)          # driver: names and sizes only
    tasks = plan_read_tasks(files, cfg)                   # driver: plain picklable dicts
    frames = [read_task(t, cfg) for t in tasks]           # workers: one DataFrame per task

Every physical record of every file gives exactly one row, ``ok`` or ``quarantined`` with a
``Q_*`` reason, a ``location`` and a detail that never contains note text or field values;
``count_physical_records(task)`` gives that number without validating. Locations:
``path:LINE`` (JSONL/NDJSON, 1-based physical line), ``path:row N`` (CSV data record / Parquet
row, 1-based), ``path#entry N`` (FHIR Bundle entry, 1-based), ``path`` (a .txt note, a lone
DocumentReference, or a whole file that could not be parsed -- which counts as one record).
"""

from clinitune.curate.readers.config import MAPPABLE_FIELDS, MIMIC_PRESET, ReaderConfig
from clinitune.curate.readers.dates import parse_date
from clinitune.curate.readers.discover import (
    FORMATS, InputFile, discover_inputs, discover_inputs_with_skipped, fingerprint_file,
)
from clinitune.curate.readers.records import RawRecord, records_to_frame, validate_record
from clinitune.curate.readers.tasks import (
    TASK_KEYS, count_physical_records, count_task_newlines, iter_read_task, number_line_tasks,
    plan_read_tasks, read_task,
)

__all__ = [
    "FORMATS", "MAPPABLE_FIELDS", "MIMIC_PRESET", "TASK_KEYS", "InputFile", "RawRecord", "ReaderConfig",
    "count_physical_records", "count_task_newlines", "discover_inputs", "discover_inputs_with_skipped",
    "fingerprint_file", "iter_read_task", "number_line_tasks", "parse_date", "plan_read_tasks", "read_task",
    "records_to_frame", "validate_record",
]
