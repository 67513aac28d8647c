"""Writing a note set: shards, manifest computed from the data, staged publish, Ray Data path."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest

from clinitune.errors import UserError
from clinitune.synth.generate import SynthOptions
from clinitune.synth.malformed import MALFORMED_KINDS
from clinitune.synth.writer import MANIFEST_NAME, generate_dataset

OPTS = SynthOptions(dup_rate=0.06, near_dup_rate=0.06, malformed_rate=0.1)


def _lines(out: Path) -> list[bytes]:
    return [line for f in sorted(out.glob("notes-*.jsonl")) for line in f.read_bytes().splitlines(keepends=True)]


def _files(out: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(out.iterdir())}


@pytest.fixture(scope="module")
def local_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("synth") / "notes"
    result = generate_dataset(200, out, 42, options=OPTS, notes_per_file=64, use_ray=False)
    return out, result


def test_files_and_manifest(local_run):
    out, result = local_run
    assert sorted(p.name for p in out.iterdir()) == sorted([f"notes-{k:05d}.jsonl" for k in range(4)] + [MANIFEST_NAME])
    assert not [p for p in out.parent.iterdir() if p.name.startswith(".")]  # no staging left behind
    manifest = json.loads((out / MANIFEST_NAME).read_text())
    assert manifest == result.manifest
    assert manifest["n"] == manifest["records"] == 200 and manifest["seed"] == 42
    assert manifest["options"]["malformed_rate"] == 0.1 and manifest["options"]["notes_per_file"] == 64
    assert [f["records"] for f in manifest["files"]] == [64, 64, 64, 8]


def test_manifest_counts_come_from_the_data(local_run):
    out, _ = local_run
    manifest = json.loads((out / MANIFEST_NAME).read_text())
    lines = _lines(out)
    assert len(lines) == 200
    listed = {(m["file"], m["line"]): m for m in manifest["malformed"]["records"]}
    types, dups, phi, patients = Counter(), Counter(), Counter(), set()
    files = sorted(out.glob("notes-*.jsonl"))
    for f in files:
        for line_no, line in enumerate(f.read_bytes().splitlines(), 1):
            if (f.name, line_no) in listed:
                continue
            r = json.loads(line)
            types[r["note_type"]] += 1
            patients.add(r["patient_id"])
            if r["dup_kind"]:
                dups[r["dup_kind"]] += 1
            phi.update(s["type"] for s in r["phi"])
    assert sum(types.values()) + manifest["malformed"]["total"] == 200
    assert {k: v for k, v in manifest["note_types"].items() if v} == dict(types)
    assert manifest["duplicates"] == {"exact": dups["exact"], "near": dups["near"]}
    assert dups["exact"] > 0 and dups["near"] > 0
    assert manifest["patients"] == len(patients)
    assert {k: v for k, v in manifest["phi_spans"].items() if v} == dict(phi)
    by_kind = Counter(m["kind"] for m in manifest["malformed"]["records"])
    assert manifest["malformed"]["by_kind"] == {k: by_kind.get(k, 0) for k in MALFORMED_KINDS}
    assert len(by_kind) >= 5
    # each listed malformed line names its own note id
    for (name, line_no), m in listed.items():
        line = (out / name).read_bytes().splitlines()[line_no - 1]
        assert m["note_id"].encode() in line[:200]


def test_output_does_not_depend_on_file_layout(local_run, tmp_path):
    out, _ = local_run
    again = generate_dataset(200, tmp_path / "again", 42, options=OPTS, notes_per_file=64, use_ray=False)
    assert _files(again.out_dir) == _files(out)
    other_layout = generate_dataset(200, tmp_path / "layout", 42, options=OPTS, notes_per_file=37, use_ray=False)
    assert _lines(other_layout.out_dir) == _lines(out)


def test_output_path_problems_are_user_errors(tmp_path):
    a_file = tmp_path / "file.txt"
    a_file.write_text("x")
    with pytest.raises(UserError, match="is a file"):
        generate_dataset(5, a_file, use_ray=False)
    full = tmp_path / "full"
    full.mkdir()
    (full / "keep.txt").write_text("x")
    with pytest.raises(UserError, match="not empty"):
        generate_dataset(5, full, use_ray=False)
    assert (full / "keep.txt").exists()
    generate_dataset(5, full, use_ray=False, overwrite=True)
    assert not (full / "keep.txt").exists() and (full / MANIFEST_NAME).exists()
    with pytest.raises(UserError, match="--n"):
        generate_dataset(0, tmp_path / "none", use_ray=False)
    assert not (tmp_path / "none").exists()


@pytest.mark.ray
def test_ray_data_writes_the_same_bytes(ray_session, local_run, tmp_path):
    out, _ = local_run
    result = generate_dataset(200, tmp_path / "ray", 42, options=OPTS, notes_per_file=64, use_ray=True)
    assert _files(result.out_dir) == _files(out)
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]
