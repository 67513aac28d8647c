"""Property tests: garbage of any kind never raises and never loses or invents a record.

For every reader and every input: no exception; every row is ``ok`` or ``quarantined`` with a
reason; columns are exactly the record schema; and the number of rows equals the number of
physical records -- computed here independently from what was written, and also equal to
``count_physical_records``.
"""

from __future__ import annotations

import base64
import csv
import json
import os
import tempfile

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from clinitune import schema as S
from clinitune.curate.readers import InputFile, ReaderConfig, count_physical_records, plan_read_tasks, read_task

SETTINGS = settings(max_examples=50, deadline=None, suppress_health_check=[HealthCheck.too_slow])
EXT = {"jsonl": "jsonl", "ndjson": "ndjson", "json": "json", "csv": "csv", "parquet": "parquet", "txt": "txt"}

json_scalars = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False), st.text(max_size=20))
json_values = st.recursive(json_scalars, lambda kids: st.one_of(st.lists(kids, max_size=4), st.dictionaries(st.text(max_size=8), kids, max_size=4)), max_leaves=12)
field_values = st.one_of(json_values, st.sampled_from(["", " ", "2020-01-02", "13/45/2020", "Patient/1", "12/31/1999 11:59 PM"]))
records = st.dictionaries(st.sampled_from(["note_id", "patient_id", "text", "note_type", "note_date", "icd10", "sex", "age_band", "x"]), field_values, max_size=9)


def read_bytes(data: bytes, fmt: str, chunk_bytes: int = 64, **cfg_kw) -> tuple[pd.DataFrame, int]:
    cfg = ReaderConfig(chunk_bytes=chunk_bytes, **cfg_kw)
    with tempfile.TemporaryDirectory() as d:
        os.mkdir(os.path.join(d, "p1"))
        path = os.path.join(d, "p1", f"input.{EXT[fmt]}")
        with open(path, "wb") as f:
            f.write(data)
        tasks = plan_read_tasks([InputFile(path, fmt, len(data), d)], cfg)
        frames = [read_task(t, cfg) for t in tasks]
        counted = sum(count_physical_records(t, cfg) for t in tasks)
    df = pd.concat(frames, ignore_index=True)
    assert list(df.columns) == S.RECORD_SCHEMA.names
    assert df.status.isin([S.STATUS_OK, S.STATUS_QUARANTINED]).all()
    assert df.loc[df.status == S.STATUS_QUARANTINED, "reason"].isin(S.QUARANTINE_REASONS).all()
    assert df.loc[df.status == S.STATUS_OK, "reason"].isna().all()
    assert df.location.is_unique
    pa.Table.from_pandas(df, schema=S.RECORD_SCHEMA, preserve_index=False)
    assert len(df) == counted
    return df, counted


def nonblank_lines(data: bytes) -> int:
    return sum(1 for line in data.split(b"\n") if line.strip())


@SETTINGS
@given(data=st.binary(max_size=1500), fmt=st.sampled_from(sorted(EXT)), chunk=st.integers(1, 97))
def test_garbage_bytes_to_every_reader(data, fmt, chunk):
    df, _ = read_bytes(data, fmt, chunk)
    if fmt in ("jsonl", "ndjson"):
        assert len(df) == nonblank_lines(data)
    elif fmt in ("txt", "parquet"):
        assert len(df) == 1
    elif fmt == "csv":
        assert len(df) <= data.count(b"\n") + data.count(b"\r") + 1


@SETTINGS
@given(lines=st.lists(st.one_of(records.map(json.dumps), json_values.map(json.dumps), st.text(max_size=40).map(lambda s: s.replace("\n", ""))), max_size=25),
       fmt=st.sampled_from(["jsonl", "ndjson"]), chunk=st.integers(8, 400), trailing=st.booleans())
def test_garbage_json_lines(lines, fmt, chunk, trailing):
    data = "\n".join(lines).encode("utf-8") + (b"\n" if trailing else b"")
    df, _ = read_bytes(data, fmt, chunk, max_text_chars=30)
    assert len(df) == nonblank_lines(data)
    # lines are numbered by physical position, whatever the chunking
    numbered = [i for i, line in enumerate(data.split(b"\n"), 1) if line.strip()]
    assert [int(loc.rsplit(":", 1)[1]) for loc in df.location] == numbered


cells = st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=12)


@SETTINGS
@given(header=st.lists(st.sampled_from(["note_id", "patient_id", "text", "note_date", "sex", "junk", ""]) | cells, max_size=6),
       rows=st.lists(st.lists(cells, max_size=7), max_size=12), preset=st.sampled_from(["none", "mimic"]))
def test_garbage_csv(header, rows, preset):
    with tempfile.TemporaryFile("w+", encoding="utf-8", newline="") as f:
        csv.writer(f).writerows([header, *rows])
        f.seek(0)
        data = f.read().encode("utf-8")
    df, _ = read_bytes(data, "csv", preset=preset)
    nonblank = [r for r in [header, *rows] if any(c.strip() for c in r)]
    assert len(df) == max(0, len(nonblank) - 1)  # the first non-blank row is the header
    if nonblank:
        widths = [len(r) for r in nonblank[1:]]
        malformed = df.reason == S.Q_MALFORMED
        assert malformed.tolist() == [w != len(nonblank[0]) for w in widths]


b64 = st.binary(max_size=30).map(lambda b: base64.b64encode(b).decode())
attachment = st.fixed_dictionaries({}, optional={
    "contentType": st.sampled_from(["text/plain", "text/plain; charset=latin-1", "text/plain; charset=nope", "application/pdf", "TEXT/PLAIN"]) | json_scalars,
    "data": b64 | st.text(max_size=12) | json_scalars,
    "url": st.just("Binary/1"),
})
fhir_resource = st.fixed_dictionaries({}, optional={
    "resourceType": st.sampled_from(["DocumentReference", "DocumentReference", "Patient"]) | json_scalars,
    "id": json_scalars,
    "status": st.sampled_from(["current", "entered-in-error"]) | json_scalars,
    "subject": st.fixed_dictionaries({}, optional={"reference": st.sampled_from(["Patient/7", "urn:uuid:1", "Group/2", "Patient/"]) | json_values,
                                                   "identifier": json_values}) | json_values,
    "date": st.sampled_from(["2020-01-02T03:04:05Z", "2020", "2020-13", "2021-02-29"]) | json_scalars,
    "context": st.fixed_dictionaries({"period": st.fixed_dictionaries({}, optional={"start": field_values})}) | json_values,
    "type": st.fixed_dictionaries({}, optional={"text": json_scalars, "coding": st.lists(st.fixed_dictionaries({}, optional={"display": json_scalars, "code": json_scalars}) | json_scalars, max_size=2)}) | json_values,
    "content": st.lists(st.fixed_dictionaries({}, optional={"attachment": attachment | json_scalars}) | json_scalars, max_size=3) | json_values,
})


@SETTINGS
@given(resources=st.lists(fhir_resource | json_values, max_size=12), chunk=st.integers(1, 300))
def test_garbage_fhir_ndjson_and_bundle(resources, chunk):
    data = "\n".join(json.dumps(r) for r in resources).encode("utf-8")
    df, _ = read_bytes(data, "ndjson", chunk)
    assert len(df) == len(resources)
    ok = df[df.status == S.STATUS_OK]
    assert ok.text.map(lambda t: bool(t.strip())).all() and ok.patient_id.notna().all()

    entries = [{"fullUrl": "urn:uuid:1", "resource": {"resourceType": "Patient", "id": "pp"}}]
    entries += [{"resource": r} if i % 3 else r for i, r in enumerate(resources)]
    bundle = json.dumps({"resourceType": "Bundle", "entry": entries}).encode("utf-8")
    bdf, _ = read_bytes(bundle, "json")
    assert len(bdf) == len(entries)
    assert bdf.location.str.contains("#entry ").all()


column_types = st.sampled_from([
    (pa.string(), st.text(max_size=10) | st.none()),
    (pa.int64(), st.integers(-2**40, 2**40) | st.none()),
    (pa.float64(), st.floats() | st.none()),
    (pa.binary(), st.binary(max_size=10) | st.none()),
    (pa.bool_(), st.booleans() | st.none()),
    (pa.list_(pa.string()), st.lists(st.text(max_size=4), max_size=2) | st.none()),
    (pa.timestamp("ms"), st.datetimes(min_value=pd.Timestamp("1900-01-01").to_pydatetime(), max_value=pd.Timestamp("2200-01-01").to_pydatetime()) | st.none()),
])


@SETTINGS
@given(data=st.data(), n_rows=st.integers(0, 30), group=st.integers(1, 8),
       names=st.lists(st.sampled_from(["note_id", "patient_id", "text", "note_type", "note_date", "sex", "TEXT", "other"]), min_size=1, max_size=6, unique=True))
def test_garbage_parquet_tables(data, n_rows, group, names):
    columns = {}
    for name in names:
        kind, values = data.draw(column_types)
        columns[name] = pa.array([data.draw(values) for _ in range(n_rows)], type=kind)
    sink = pa.BufferOutputStream()
    pq.write_table(pa.table(columns), sink, row_group_size=group)
    df, _ = read_bytes(sink.getvalue().to_pybytes(), "parquet")
    assert len(df) == n_rows
    assert df.location.tolist() == [f"{df.source.iloc[0]}:row {i}" for i in range(1, n_rows + 1)] if n_rows else True
