"""Readers: every format, every reader quarantine reason, line numbers across chunks, discovery."""

from __future__ import annotations

import base64
import csv
import json
import os
import pickle

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from clinitune.config import validate_config
from clinitune.curate.readers import (
    InputFile, ReaderConfig, count_physical_records, count_task_newlines, discover_inputs, fingerprint_file,
    iter_read_task, number_line_tasks, plan_read_tasks, read_task,
)
from clinitune.curate.readers import jsonlines
from clinitune.errors import ConfigError, InputPathError
from clinitune import schema as S

READER_REASONS = {
    S.Q_MALFORMED, S.Q_WRONG_TYPE, S.Q_EMPTY_TEXT, S.Q_INVALID_ENCODING, S.Q_TEXT_TOO_LONG,
    S.Q_MISSING_PATIENT, S.Q_BAD_DATE, S.Q_BAD_BASE64, S.Q_UNSUPPORTED_CONTENT, S.Q_INVALID_FHIR,
    S.Q_UNRESOLVED_REFERENCE,
}
SECRET = "ZZSECRETPHI"  # planted in values; must never reach a detail


def read_paths(paths, cfg=None) -> pd.DataFrame:
    cfg = cfg or ReaderConfig()
    files, _ = discover_inputs([str(p) for p in paths], cfg)
    tasks = plan_read_tasks(files, cfg)
    frames = [read_task(t, cfg) for t in tasks]
    df = pd.concat(frames, ignore_index=True)
    check_frame(df, cfg, sum(count_physical_records(t, cfg) for t in tasks))
    return df


def check_frame(df: pd.DataFrame, cfg: ReaderConfig, expected_rows: int) -> None:
    assert list(df.columns) == S.RECORD_SCHEMA.names
    assert len(df) == expected_rows
    pa.Table.from_pandas(df, schema=S.RECORD_SCHEMA, preserve_index=False)  # strings or nulls only
    ok = df[df.status == S.STATUS_OK]
    bad = df[df.status == S.STATUS_QUARANTINED]
    assert len(ok) + len(bad) == len(df)
    assert ok.reason.isna().all() and ok.detail.isna().all()
    assert ok.text.map(lambda t: isinstance(t, str) and t.strip() != "" and len(t) <= cfg.max_text_chars).all()
    assert ok.patient_id.map(lambda p: isinstance(p, str) and p != "").all()
    assert ok.note_date.map(lambda d: d is None or (len(d) == 10 and d[4] == "-")).all()
    assert bad.reason.isin(READER_REASONS).all() and bad.detail.map(bool).all()
    assert bad.text.isna().all()
    assert df.note_id.map(lambda n: isinstance(n, str) and n != "").all()
    assert df.location.map(lambda loc: isinstance(loc, str) and loc.startswith(tuple(df.source))).all()
    assert df.attributes.map(lambda a: isinstance(json.loads(a), dict)).all()
    assert not df.detail.dropna().str.contains(SECRET).any()


def write_jsonl(path, records) -> None:
    with open(path, "w", encoding="utf-8") as f:
        for r in records:
            f.write((r if isinstance(r, str) else json.dumps(r)) + "\n")


def by_loc(df: pd.DataFrame) -> dict[str, pd.Series]:
    return {row.location: row for row in df.itertuples(index=False)}


def docref(**over):
    res = {
        "resourceType": "DocumentReference", "id": "doc-1", "status": "current",
        "subject": {"reference": "Patient/p-9"},
        "type": {"coding": [{"system": "http://loinc.org", "code": "11506-3", "display": "Progress note"}]},
        "date": "2021-05-06T10:00:00Z",
        "content": [{"attachment": {"contentType": "text/plain; charset=utf-8", "data": base64.b64encode(b"Stable overnight.").decode()}}],
    }
    res.update(over)
    return res


# ---------------------------------------------------------------------------------------------


def test_jsonl_valid_and_invalid_records(tmp_path):
    p = tmp_path / "notes.jsonl"
    write_jsonl(p, [
        {"note_id": "n1", "patient_id": "p1", "text": "BP 120/80.", "note_type": "progress", "note_date": "03/04/2020", "icd10": ["I10"], "sex": "F", "other": 1},
        "",
        {"patient_id": 42, "text": "No id.", "note_date": "2020-03-05 14:30:00"},
        "   ",
        '{"patient_id": "p1", "text": ',
        {"note_id": "n4", "patient_id": "p1", "text": 12},
        {"note_id": "n5", "patient_id": "p1", "text": "   \n "},
        {"note_id": "n6", "text": "who?"},
        {"note_id": "n7", "patient_id": "p1", "text": "x", "note_date": SECRET},
        [1, 2],
        {"note_id": "n9", "patient_id": {"id": SECRET}, "text": "x"},
    ])
    df = read_paths([p])
    rows = by_loc(df)
    loc = lambda n: f"{p}:{n}"  # noqa: E731
    assert len(df) == 9  # 11 lines, 2 blank
    r1 = rows[loc(1)]
    assert (r1.status, r1.note_id, r1.patient_id, r1.text, r1.note_type, r1.note_date) == ("ok", "n1", "p1", "BP 120/80.", "progress", "2020-03-04")
    assert json.loads(r1.attributes) == {"icd10": ["I10"], "sex": "F"}
    r3 = rows[loc(3)]
    assert r3.status == "ok" and r3.patient_id == "42" and r3.note_date == "2020-03-05" and r3.attributes == "{}"
    assert r3.note_id.startswith("notes-") and r3.note_id.endswith("-L3")
    expected = {5: S.Q_MALFORMED, 6: S.Q_WRONG_TYPE, 7: S.Q_EMPTY_TEXT, 8: S.Q_MISSING_PATIENT, 9: S.Q_BAD_DATE, 10: S.Q_MALFORMED, 11: S.Q_WRONG_TYPE}
    assert {n: rows[loc(n)].reason for n in expected} == expected
    assert rows[loc(6)].detail == "field 'text' is int, expected string"
    assert rows[loc(6)].note_id == "n4"  # a usable id still names the quarantined note
    # the same synthetic id on every read: derived from path and line only
    assert read_paths([p]).note_id.tolist() == df.note_id.tolist()


@pytest.mark.parametrize("chunk_bytes", [1, 2, 7, 19, 64, 10_000])
def test_line_numbers_across_chunk_boundaries(tmp_path, chunk_bytes):
    p = tmp_path / "many.jsonl"
    lines, expected = [], []
    for i in range(1, 41):
        if i % 7 == 0:
            lines.append("")  # blank: numbered, not a record
        elif i % 11 == 0:
            lines.append("{broken")
            expected.append(i)
        else:
            lines.append(json.dumps({"note_id": f"n{i}", "patient_id": "p", "text": "t" * (i % 5 + 1)}))
            expected.append(i)
    p.write_text("\n".join(lines), encoding="utf-8")  # no trailing newline on the last line
    cfg = ReaderConfig(chunk_bytes=chunk_bytes)
    files, _ = discover_inputs([str(p)], cfg)
    tasks = plan_read_tasks(files, cfg)
    assert len(tasks) == -(-p.stat().st_size // chunk_bytes)
    df = pd.concat([read_task(t, cfg) for t in tasks], ignore_index=True)
    assert df.location.tolist() == [f"{p}:{i}" for i in expected]
    ok = df[df.status == "ok"]
    assert ok.note_id.tolist() == [f"n{int(loc.rsplit(':', 1)[1])}" for loc in ok.location]
    assert sum(count_physical_records(t, cfg) for t in tasks) == len(expected)
    # the linear two-pass numbering gives the same answer
    numbered = number_line_tasks(tasks, [count_task_newlines(t) for t in tasks])
    df2 = pd.concat([read_task(t, cfg) for t in numbered], ignore_index=True)
    assert df2.location.tolist() == df.location.tolist()


def test_over_long_line_is_skipped_without_loading_and_numbering_continues(tmp_path, monkeypatch):
    monkeypatch.setattr(jsonlines, "line_limit", lambda cfg: 200)
    p = tmp_path / "big.jsonl"
    write_jsonl(p, [{"patient_id": "p", "text": "a" * 1000}, {"patient_id": "p", "text": "fine"}])
    df = read_paths([p])
    assert df.reason.tolist() == [S.Q_TEXT_TOO_LONG, None]
    assert df.location.tolist() == [f"{p}:1", f"{p}:2"]


def test_text_limit_invalid_encoding_and_bom(tmp_path):
    p = tmp_path / "enc.jsonl"
    good = json.dumps({"patient_id": "p", "text": "caf\u00e9"}).encode("utf-8")
    bad = b'{"patient_id": "p", "text": "caf\xe9"}'
    lone = b'{"patient_id": "p", "text": "x\\ud800y"}'  # valid JSON, not encodable text
    long = json.dumps({"patient_id": "p", "text": "y" * 51}).encode()
    p.write_bytes(b"\xef\xbb\xbf" + good + b"\n" + bad + b"\n" + lone + b"\n" + long + b"\n")
    df = read_paths([p], ReaderConfig(max_text_chars=50))
    assert df.reason.tolist() == [None, S.Q_INVALID_ENCODING, S.Q_INVALID_ENCODING, S.Q_TEXT_TOO_LONG]
    assert df.text[0] == "caf\u00e9"


def test_ndjson_fhir_document_references(tmp_path):
    p = tmp_path / "DocumentReference.ndjson"
    latin = base64.b64encode("Fi\u00e8vre".encode("latin-1")).decode()
    write_jsonl(p, [
        docref(),
        docref(id="d2", subject={"reference": "https://ehr.example/fhir/Patient/p-2/_history/3"}, type={"text": "Discharge"},
               context={"period": {"start": "2020-12-31T23:00:00+02:00"}},
               content=[{"attachment": {"contentType": "application/pdf", "data": "JVBER"}},
                        {"attachment": {"contentType": "text/plain;charset=ISO-8859-1", "data": latin}}]),
        docref(id="d3", content=[{"attachment": {"contentType": "text/plain", "data": "not base64!!"}}]),
        docref(id="d4", content=[{"attachment": {"contentType": "text/plain", "url": "Binary/1"}}]),
        docref(id="d5", content=[{"attachment": {"contentType": "application/pdf", "data": "JVBER"}}]),
        {"resourceType": "Patient", "id": "p-9", "name": [{"family": SECRET}]},
        docref(id="d7", subject={"reference": "Group/g1"}),
        docref(id="d8", status="entered-in-error"),
        docref(id="d9", content={"attachment": {}}),
        docref(id="d10", date="2021-13-40"),
        docref(id="d11", subject={"identifier": {"value": "MRN-1"}}, date=None),
        docref(id="d12", content=[{"attachment": {"contentType": "text/plain", "data": base64.b64encode(b"\xff\xfe").decode()}}]),
        docref(id="d13", content=[{"attachment": {"contentType": "text/plain", "data": ""}}]),
        "not json at all",
    ])
    df = read_paths([p])
    assert len(df) == 14
    rows = {r.note_id: r for r in df.itertuples()}
    d1 = rows["doc-1"]
    assert (d1.status, d1.patient_id, d1.text, d1.note_type, d1.note_date) == ("ok", "p-9", "Stable overnight.", "Progress note", "2021-05-06")
    d2 = rows["d2"]
    assert (d2.status, d2.patient_id, d2.text, d2.note_type, d2.note_date) == ("ok", "p-2", "Fi\u00e8vre", "Discharge", "2020-12-31")
    assert rows["d11"].status == "ok" and rows["d11"].patient_id == "MRN-1" and rows["d11"].note_date is None
    reasons = {k: rows[k].reason for k in ("d3", "d4", "d5", "d7", "d8", "d9", "d10", "d12", "d13")}
    assert reasons == {
        "d3": S.Q_BAD_BASE64, "d4": S.Q_UNRESOLVED_REFERENCE, "d5": S.Q_UNSUPPORTED_CONTENT, "d7": S.Q_MISSING_PATIENT,
        "d8": S.Q_UNSUPPORTED_CONTENT, "d9": S.Q_WRONG_TYPE, "d10": S.Q_BAD_DATE, "d12": S.Q_INVALID_ENCODING, "d13": S.Q_EMPTY_TEXT,
    }
    patient_row = df[df.location == f"{p}:6"].iloc[0]
    assert patient_row.reason == S.Q_UNSUPPORTED_CONTENT and patient_row.note_id.endswith("-L6")  # not the Patient's id
    assert df[df.location == f"{p}:14"].iloc[0].reason == S.Q_MALFORMED


def test_fhir_bundle_file(tmp_path):
    bundle = {
        "resourceType": "Bundle", "type": "collection",
        "entry": [
            {"fullUrl": "urn:uuid:1111", "resource": {"resourceType": "Patient", "id": "pat-7"}},
            {"fullUrl": "urn:uuid:2222", "resource": docref(id="b1", subject={"reference": "urn:uuid:1111"})},
            {"resource": docref(id="b2", content=[{"attachment": {"contentType": "text/plain", "data": "@@"}}])},
            {"search": {"mode": "match"}},
            "junk",
        ],
    }
    p = tmp_path / "bundle.json"
    p.write_text(json.dumps(bundle), encoding="utf-8")
    single = tmp_path / "single.json"
    single.write_text(json.dumps(docref(id="solo")), encoding="utf-8")
    not_bundle = tmp_path / "config.json"
    not_bundle.write_text(json.dumps({"name": SECRET}), encoding="utf-8")
    broken = tmp_path / "broken.json"
    broken.write_text('{"resourceType": "Bundle", "entry": [', encoding="utf-8")
    array = tmp_path / "array.json"
    array.write_text("[1, 2, 3]", encoding="utf-8")
    latin = tmp_path / "latin.json"
    latin.write_bytes(b'{"resourceType": "Bundle", "id": "caf\xe9"}')
    empty = tmp_path / "empty_bundle.json"
    empty.write_text('{"resourceType": "Bundle", "type": "searchset", "total": 0}', encoding="utf-8")

    df = read_paths([p, single, not_bundle, broken, array, latin, empty])
    rows = by_loc(df)
    assert [rows[f"{p}#entry {n}"].reason for n in range(1, 6)] == [
        S.Q_UNSUPPORTED_CONTENT, None, S.Q_BAD_BASE64, S.Q_MALFORMED, S.Q_MALFORMED,
    ]
    assert rows[f"{p}#entry 2"].patient_id == "pat-7" and rows[f"{p}#entry 2"].note_id == "b1"
    assert rows[str(single)].status == "ok" and rows[str(single)].note_id == "solo"
    for path, reason in ((not_bundle, S.Q_MALFORMED), (broken, S.Q_MALFORMED), (array, S.Q_MALFORMED), (latin, S.Q_INVALID_ENCODING)):
        assert rows[str(path)].reason == reason  # one row for the whole file, located at the path
    assert "not a FHIR Bundle" in rows[str(not_bundle)].detail
    assert not (df.source == str(empty)).any()  # a Bundle with no entries has no records
    assert len(df) == 10


def test_csv_reader_and_mimic_preset(tmp_path):
    p = tmp_path / "NOTEEVENTS.csv"
    header = ["ROW_ID", "SUBJECT_ID", "HADM_ID", "CHARTDATE", "CATEGORY", "DESCRIPTION", "ISERROR", "TEXT"]
    rows = [
        ["174", "22532", "167853", "2151-08-04", "Discharge summary", "Report", "", "Admission Date:  [**2151-7-16**]\n\nService: MEDICINE\n"],
        [],
        ["175", "13702", "107527", "2118-06-14", "Echo", "Report", "", "   "],
        ["176", "", "", "2118-06-14", "ECG", "Report", "", "Sinus rhythm."],
        ["177", "13702", "", "14/31/2118", "ECG", "Report", "", "Sinus rhythm."],
        ["178", "13702", "", "2118-06-14"],
        ["", "13702", "", "06/14/2118", "Nursing", "", "", "Resting comfortably."],
    ]
    with open(p, "w", encoding="utf-8", newline="") as f:
        w = csv.writer(f)
        w.writerow(header)
        w.writerows(rows)
    with open(p, "ab") as f:  # one row holding a byte that is not UTF-8
        f.write(b'179,13702,,2118-06-15,Nursing,,,"Temp 38\xb0C"\r\n')
    cfg = ReaderConfig(preset="mimic")
    df = read_paths([p], cfg)
    assert df.location.tolist() == [f"{p}:row {n}" for n in range(1, 8)]
    first = df.iloc[0]
    assert (first.note_id, first.patient_id, first.note_type, first.note_date) == ("174", "22532", "Discharge summary", "2151-08-04")
    assert first.text.startswith("Admission Date:") and "\n\nService" in first.text
    assert df.reason.tolist()[1:] == [S.Q_EMPTY_TEXT, S.Q_MISSING_PATIENT, S.Q_BAD_DATE, S.Q_MALFORMED, None, S.Q_INVALID_ENCODING]
    assert df.iloc[5].note_id.endswith("-R6") and df.iloc[5].note_date == "2118-06-14"
    assert df.iloc[2].detail == "field 'SUBJECT_ID' (patient_id) is missing or empty"
    assert df.iloc[6].note_id == "179"

    # lower-case MIMIC headers, tab delimiter, and column_mapping over the preset
    q = tmp_path / "lower.csv"
    q.write_text("row_id\tsubject_id\tcategory\tchartdate\tnote\tsex\n1\t2\tECG\t2100-01-02\tSinus.\tM\n", encoding="utf-8")
    cfg2 = ReaderConfig(preset="mimic", column_mapping={"text": "note"}, csv_delimiter="\t")
    df2 = read_paths([q], cfg2)
    assert df2.iloc[0].status == "ok" and df2.iloc[0].text == "Sinus." and df2.iloc[0].patient_id == "2"
    assert json.loads(df2.iloc[0].attributes) == {"sex": "M"}
    # a file without the mapped text column: every row says so
    df3 = read_paths([q], ReaderConfig(preset="mimic", csv_delimiter="\t"))
    assert df3.iloc[0].reason == S.Q_EMPTY_TEXT and df3.iloc[0].detail == "field 'TEXT' (text) is missing"


def test_csv_unterminated_quote_and_empty_file(tmp_path):
    p = tmp_path / "bad.csv"
    p.write_text('note_id,patient_id,text\n1,p,"ok"\n2,p,"never closed\n3,p,lost\n', encoding="utf-8")
    df = read_paths([p])
    assert df.status.tolist() == ["ok", "ok"]  # the open quote swallows the rest: one record
    assert df.iloc[1].text.startswith("never closed")
    empty = tmp_path / "empty.csv"
    empty.write_text("", encoding="utf-8")
    assert len(read_paths([empty])) == 0


def test_parquet_row_groups_types_and_corruption(tmp_path):
    p = tmp_path / "notes.parquet"
    table = pa.table({
        "note_id": pa.array(["a", None, "c", "d", "e"]),
        "patient_id": pa.array([1, 2, None, 4, 5], pa.int64()),
        "text": pa.array([b"one", b"two", b"three", b"\xff\xfe", b"five"], pa.binary()),
        "note_date": pa.array([pd.Timestamp("2020-01-02 10:00"), None, None, None, pd.Timestamp("2020-02-03")], pa.timestamp("us")),
        "icd10": pa.array([["E11.9"], None, None, None, []], pa.list_(pa.string())),
        "unused": pa.array([SECRET] * 5),
    })
    pq.write_table(table, p, row_group_size=2)
    cfg = ReaderConfig()
    files, _ = discover_inputs([str(p)], cfg)
    tasks = plan_read_tasks(files, cfg)
    assert [(t["row_group"], t["row_offset"], t["num_rows"]) for t in tasks] == [(0, 0, 2), (1, 2, 2), (2, 4, 1)]
    df = read_paths([p])
    assert df.location.tolist() == [f"{p}:row {n}" for n in range(1, 6)]
    assert df.reason.tolist() == [None, None, S.Q_MISSING_PATIENT, S.Q_INVALID_ENCODING, None]
    assert df.iloc[0].note_date == "2020-01-02" and df.iloc[0].patient_id == "1" and df.iloc[0].text == "one"
    assert json.loads(df.iloc[0].attributes) == {"icd10": ["E11.9"]}
    assert df.iloc[1].note_id.endswith("-R2")

    struct = tmp_path / "struct.parquet"
    pq.write_table(pa.table({"patient_id": ["p"], "text": pa.array([{"a": 1}])}), struct)
    assert read_paths([struct]).iloc[0].reason == S.Q_WRONG_TYPE

    corrupt = tmp_path / "corrupt.parquet"
    corrupt.write_bytes(b"PAR1" + os.urandom(64))
    dc = read_paths([corrupt])
    assert len(dc) == 1 and dc.iloc[0].location == str(corrupt) and dc.iloc[0].reason == S.Q_MALFORMED

    # a file whose columns are all unmapped still yields one row per physical row
    other = tmp_path / "other.parquet"
    pq.write_table(pa.table({"foo": [1, 2, 3]}), other)
    assert read_paths([other]).reason.tolist() == [S.Q_EMPTY_TEXT] * 3


def test_text_files(tmp_path):
    root = tmp_path / "notes"
    (root / "p001").mkdir(parents=True)
    (root / "p002").mkdir()
    (root / "p001" / "2020-01-01_progress.txt").write_text("Afebrile.\n", encoding="utf-8")
    (root / "p002" / "empty.txt").write_text("  \n", encoding="utf-8")
    (root / "p002" / "latin.txt").write_bytes(b"Temp 38\xb0C")
    (root / "stray.txt").write_text("Orphan note.", encoding="utf-8")
    df = read_paths([root], ReaderConfig(txt_patient_pattern=r"notes[/\\](?P<patient_id>p\d+)[/\\][^/\\]+\.txt$"))
    rows = {r.note_id: r for r in df.itertuples()}
    assert set(rows) == {"p001/2020-01-01_progress", "p002/empty", "p002/latin", "stray"}
    good = rows["p001/2020-01-01_progress"]
    assert (good.status, good.patient_id, good.text, good.location) == ("ok", "p001", "Afebrile.\n", str(root / "p001" / "2020-01-01_progress.txt"))
    assert rows["p002/empty"].reason == S.Q_EMPTY_TEXT
    assert rows["p002/latin"].reason == S.Q_INVALID_ENCODING
    assert rows["stray"].reason == S.Q_MISSING_PATIENT
    # read as Latin-1 it is fine; a file named directly gets its stem as note id
    one = read_paths([root / "p002" / "latin.txt"], ReaderConfig(encoding="latin-1"))
    assert one.iloc[0].status == "ok" and one.iloc[0].text == "Temp 38\u00b0C" and one.iloc[0].note_id == "latin"
    assert one.iloc[0].patient_id == "p002"  # default pattern: the directory name


def test_mixed_directory_all_formats(tmp_path):
    d = tmp_path / "in"
    (d / "sub" / "p5").mkdir(parents=True)
    (d / ".hidden").mkdir()
    write_jsonl(d / "a.jsonl", [{"patient_id": "p1", "text": "j1"}, {"patient_id": "p1", "text": ""}])
    write_jsonl(d / "sub" / "b.ndjson", [docref(id="n1"), docref(id="n2", subject=None)])
    (d / "sub" / "c.json").write_text(json.dumps({"resourceType": "Bundle", "entry": [{"resource": docref(id="n3")}]}))
    (d / "d.csv").write_text("note_id,patient_id,text\nc1,p2,hello\nc2,p2,\n", encoding="utf-8")
    pq.write_table(pa.table({"patient_id": ["p3", "p4"], "text": ["q1", "q2"]}), d / "e.parquet")
    (d / "sub" / "p5" / "f.TXT").write_text("t1", encoding="utf-8")
    (d / "README.md").write_text("ignore me")
    (d / ".hidden" / "g.jsonl").write_text("{}\n")
    (d / ".DS_Store").write_bytes(b"\0")
    os.symlink(d / "a.jsonl", d / "link.jsonl")
    files, skipped = discover_inputs([str(d)], ReaderConfig())
    assert [(os.path.relpath(f.path, d), f.format) for f in files] == [
        ("a.jsonl", "jsonl"), ("d.csv", "csv"), ("e.parquet", "parquet"),
        ("sub/b.ndjson", "ndjson"), ("sub/c.json", "json"), ("sub/p5/f.TXT", "txt"),
    ]
    assert sorted(os.path.relpath(s, d) for s in skipped) == [".DS_Store", ".hidden", "README.md", "link.jsonl"]
    df = read_paths([d])
    assert len(df) == 10
    assert df.groupby("status").size().to_dict() == {"ok": 7, "quarantined": 3}
    assert set(df[df.status == "ok"].note_id) >= {"n1", "n3", "c1", "sub/p5/f"}
    # symlinks are followed when asked; the same file reached twice is read once
    files2, _ = discover_inputs([str(d), str(d / "a.jsonl")], ReaderConfig(follow_symlinks=True))
    assert sum(f.path.endswith(".jsonl") for f in files2) == 1


def test_discovery_errors_are_one_line(tmp_path):
    (tmp_path / "empty").mkdir()
    (tmp_path / "notes.xml").write_text("<x/>")
    cfg = ReaderConfig()
    for bad, words in ((tmp_path / "missing", "does not exist"), (tmp_path / "empty", "no supported input file"),
                       (tmp_path / "notes.xml", "unsupported extension")):
        with pytest.raises(InputPathError) as err:
            discover_inputs([str(bad)], cfg)
        msg = str(err.value)
        assert words in msg and str(bad) in msg and "Fix:" in msg and "\n" not in msg
    with pytest.raises(InputPathError):
        discover_inputs([], cfg)


def test_reader_config_validation():
    cfg = ReaderConfig(preset="mimic", column_mapping={"note_date": "STORETIME"})
    assert cfg.resolved_mapping() == {"note_id": "ROW_ID", "patient_id": "SUBJECT_ID", "text": "TEXT", "note_type": "CATEGORY", "note_date": "STORETIME"}
    for data, key in (
        ({"txt_patient_pattern": r"(?P<pid>[^/]+)/x\.txt$"}, "txt_patient_pattern"),
        ({"txt_patient_pattern": "(unclosed"}, "txt_patient_pattern"),
        ({"column_mapping": {"body": "TEXT"}}, "column_mapping"),
        ({"encoding": "utf-99"}, "encoding"),
        ({"csv_delimiter": ";;"}, "csv_delimiter"),
        ({"chunk_bytes": 0}, "chunk_bytes"),
        ({"preset": "epic"}, "preset"),
        ({"colum_mapping": {}}, "colum_mapping"),
    ):
        with pytest.raises(ConfigError) as err:
            validate_config(data, ReaderConfig, source="reader")
        assert key in str(err.value) and "\n" not in str(err.value)
    assert all(f.description for f in ReaderConfig.model_fields.values())


def test_tasks_are_uniform_picklable_and_batched(tmp_path):
    p = tmp_path / "x.jsonl"
    write_jsonl(p, [{"patient_id": "p", "text": f"t{i}"} for i in range(10)])
    pq.write_table(pa.table({"patient_id": ["p"] * 3, "text": ["a", "b", "c"]}), tmp_path / "y.parquet")
    cfg = ReaderConfig(chunk_bytes=100)
    files, _ = discover_inputs([str(tmp_path)], cfg)
    tasks = plan_read_tasks(files, cfg)
    assert len({tuple(sorted(t)) for t in tasks}) == 1  # same keys everywhere
    assert pickle.loads(pickle.dumps((tasks, cfg))) == (tasks, cfg)
    for t in tasks:
        whole = read_task(t, cfg)
        parts = list(iter_read_task(t, cfg, batch_rows=2))
        assert all(len(b) <= 2 for b in parts)
        pd.testing.assert_frame_equal(pd.concat(parts, ignore_index=True) if parts else whole, whole)


def test_unreadable_file_becomes_one_row(tmp_path):
    task = plan_read_tasks([InputFile(str(tmp_path / "gone.jsonl"), "jsonl", 10, str(tmp_path))], ReaderConfig())[0]
    df = read_task(task, ReaderConfig())
    assert len(df) == 1 == count_physical_records(task)
    assert df.iloc[0].location == str(tmp_path / "gone.jsonl") and df.iloc[0].reason == S.Q_MALFORMED


def test_fingerprint_streams(tmp_path):
    p = tmp_path / "f.bin"
    p.write_bytes(b"abc" * 1000)
    fp = fingerprint_file(str(p))
    import hashlib

    assert fp == {"path": str(p), "size": 3000, "sha256": hashlib.sha256(b"abc" * 1000).hexdigest()}
    assert fingerprint_file(str(p), block_size=7) == fp


def test_every_reader_quarantine_reason_is_reachable(tmp_path):
    """One crafted record per reason code that readers own (the rest belong to later steps)."""
    b64 = base64.b64encode(b"text").decode()
    write_jsonl(tmp_path / "r.jsonl", [
        "{oops",                                                     # malformed_record
        {"patient_id": "p", "text": ["a"]},                          # wrong_type
        {"patient_id": "p", "text": " "},                            # empty_text
        {"patient_id": "p", "text": "x" * 30},                       # text_too_long
        {"text": "x"},                                               # missing_patient_id
        {"patient_id": "p", "text": "x", "note_date": "yesterday"},  # unparseable_date
    ])
    (tmp_path / "e.jsonl").write_bytes(b'{"patient_id": "p", "text": "\xc3"}\n')  # invalid_encoding
    write_jsonl(tmp_path / "f.ndjson", [
        docref(content=[{"attachment": {"contentType": "text/plain", "data": "%%%"}}]),  # bad_base64
        docref(content=[{"attachment": {"contentType": "application/pdf", "data": b64}}]),  # unsupported_content
        docref(content=[{"attachment": {"contentType": "text/plain", "url": "Binary/x"}}]),  # unresolved_reference
        docref(author={"reference": "Practitioner/1"}),                                   # invalid_fhir
    ])
    df = read_paths([tmp_path], ReaderConfig(max_text_chars=20))
    assert set(df.reason.dropna()) == READER_REASONS
    assert (df.status == "quarantined").all()
