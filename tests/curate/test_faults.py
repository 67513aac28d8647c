"""Curation under faults: a killed Ray worker, a killed driver, a full disk, an unwritable output."""

from __future__ import annotations

import errno
import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pandas as pd
import pytest

from clinitune.schema import SPLITS

ROOT = Path(__file__).resolve().parents[2]


def write_notes(path: Path, n: int, seed: int = 3) -> None:
    from clinitune.synth import iter_notes

    with open(path, "w", encoding="utf-8") as f:
        for rec in iter_notes(n, seed):
            rec.pop("phi", None)
            f.write(json.dumps(rec) + "\n")


def _read(out: Path, sub: str) -> pd.DataFrame:
    files = sorted((out / sub).glob("*.parquet"))
    return pd.concat([pd.read_parquet(f) for f in files], ignore_index=True) if files else pd.DataFrame()


def check_published_whole(out: Path, n_input: int) -> dict:
    """The published output reconciles with its manifest and holds each note id once."""
    m = json.loads((out / "manifest.json").read_text())
    assert m["reconciles"] is True and m["counts"]["input"] == n_input
    ids = pd.concat([_read(out, s)["note_id"] for s in SPLITS], ignore_index=True)
    assert ids.is_unique, "a note id was published twice"
    assert {s: len(_read(out, s)) for s in SPLITS} == m["counts"]["output"]
    assert not list(out.parent.glob(f".{out.name}.staging-*")), "a staging directory was left behind"
    return m


_RUNNER = textwrap.dedent("""
    import os, sys, json
    import ray
    from clinitune.curate.config import CurateConfig
    from clinitune.curate.pipeline import run_curation
    ray.init(address="local", num_cpus=2, include_dashboard=False, log_to_driver=False, _temp_dir=sys.argv[3],
             object_store_memory=300 * 1024**2)
    cfg = CurateConfig()
    cfg.execution.batch_size = 64
    cfg.reader.chunk_bytes = 256 * 1024
    r = run_curation([sys.argv[1]], sys.argv[2], cfg, force=True)
    print(json.dumps({"input": r.manifest["counts"]["input"]}))
""")


def _start(notes: Path, out: Path, tmp: Path) -> subprocess.Popen:
    env = {**os.environ, "RAY_USAGE_STATS_ENABLED": "0", "PYTHONPATH": str(ROOT / "platform")}
    env.pop("RAY_ADDRESS", None)
    ray_tmp = Path("/tmp") / f"ct-faults-{os.getpid()}-{time.monotonic_ns() % 10**6}"
    return subprocess.Popen(
        [sys.executable, "-c", _RUNNER, str(notes), str(out), str(ray_tmp)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, start_new_session=True,
    )


def _busy_workers(proc: subprocess.Popen) -> list:
    import psutil

    found = []
    for p in psutil.Process(proc.pid).children(recursive=True):
        try:
            title = " ".join(p.cmdline())
        except psutil.Error:
            continue
        # A worker of a Ray Data map stage (a read, step or de-id task or actor), not Ray's own
        # bookkeeping actors (Ray Data's stats actor, coordinators).
        if title.startswith("ray::") and "Map" in title and "Stats" not in title:
            found.append(p)
    return found


@pytest.mark.slow
def test_killed_worker_run_finishes_reconciled_without_duplicates(tmp_path):
    notes = tmp_path / "notes.jsonl"
    write_notes(notes, 3000)
    out = tmp_path / "curated"
    proc = _start(notes, out, tmp_path)
    killed = 0
    deadline = time.time() + 600
    try:
        while proc.poll() is None and time.time() < deadline and killed < 2:
            busy = _busy_workers(proc)
            if busy:
                time.sleep(1.0)  # mid-task
                try:
                    busy[0].send_signal(signal.SIGKILL)
                    killed += 1
                except Exception:  # noqa: BLE001 - it finished in between
                    pass
                time.sleep(5.0)
            time.sleep(0.2)
        stdout, stderr = proc.communicate(timeout=900)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    assert killed >= 1, "no Ray worker was seen running a task"
    assert proc.returncode == 0, stderr[-3000:]
    check_published_whole(out, 3000)


@pytest.mark.slow
def test_killed_driver_leaves_old_output_and_rerun_publishes_whole(tmp_path):
    notes = tmp_path / "notes.jsonl"
    write_notes(notes, 2000)
    out = tmp_path / "curated"
    first = _start(notes, out, tmp_path)
    _, err = first.communicate(timeout=900)
    assert first.returncode == 0, err[-3000:]
    before = check_published_whole(out, 2000)

    # A forced re-run killed (driver and its local Ray) once its staging holds written files.
    second = _start(notes, out, tmp_path)
    deadline = time.time() + 600
    while time.time() < deadline and second.poll() is None:
        staged = list(out.parent.glob(f".{out.name}.staging-*/**/*.parquet"))
        if staged:
            break
        time.sleep(0.2)
    assert second.poll() is None, "the run ended before it could be killed mid-write"
    os.killpg(second.pid, signal.SIGKILL)
    second.wait(timeout=60)
    # Whatever the kill left, the published output is the first run's, whole.
    m = json.loads((out / "manifest.json").read_text())
    assert m["dataset_hash"] == before["dataset_hash"] and m["run_id"] == before["run_id"]

    third = _start(notes, out, tmp_path)
    _, err = third.communicate(timeout=900)
    assert third.returncode == 0, err[-3000:]
    after = check_published_whole(out, 2000)
    assert after["run_id"] != before["run_id"] and after["dataset_hash"] == before["dataset_hash"]


def _mount_tmpfs(path: Path, *options: str) -> bool:
    path.mkdir(parents=True, exist_ok=True)
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", ",".join(options), "tmpfs", str(path)], capture_output=True)
    return r.returncode == 0


@pytest.mark.ray
def test_full_disk_is_a_one_line_error_naming_the_path(ray_session, tmp_path, monkeypatch):
    from clinitune.curate import manifest as mf
    from clinitune.curate.config import CurateConfig
    from clinitune.curate.pipeline import run_curation
    from clinitune.errors import OutputPathError

    notes = tmp_path / "notes.jsonl"
    write_notes(notes, 60)
    cfg = CurateConfig()
    cfg.boilerplate.enabled = False
    # A real full disk where this machine lets the test mount a small tmpfs.
    disk = tmp_path / "disk"
    if _mount_tmpfs(disk, "size=256k"):
        try:
            (disk / "filler").write_bytes(b"\0" * (200 * 1024))
            with pytest.raises(OutputPathError) as info:
                run_curation([str(notes)], disk / "curated", cfg)
            msg = str(info.value)
            assert str(disk / "curated") in msg and "no space left" in msg and "\n" not in msg
            assert not list(disk.glob(".curated.staging-*"))
        finally:
            subprocess.run(["umount", str(disk)], capture_output=True)
    # Everywhere: ENOSPC injected where the manifest is written, after a good earlier output.
    out = tmp_path / "curated"
    good = run_curation([str(notes)], out, cfg)

    def full(*_a, **_k):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(mf, "dataset_card", full)
    with pytest.raises(OutputPathError) as info:
        run_curation([str(notes)], out, cfg, force=True)
    assert str(out) in str(info.value) and "\n" not in str(info.value)
    assert json.loads((out / "manifest.json").read_text())["run_id"] == good.manifest["run_id"]


@pytest.mark.ray
def test_unwritable_output_directory_is_a_one_line_error(ray_session, tmp_path):
    from clinitune.curate.config import CurateConfig
    from clinitune.curate.pipeline import run_curation
    from clinitune.errors import OutputPathError

    notes = tmp_path / "notes.jsonl"
    write_notes(notes, 20)
    cfg = CurateConfig()
    cfg.boilerplate.enabled = False
    ro = tmp_path / "ro"
    if _mount_tmpfs(ro, "size=1m", "ro"):
        target = ro / "curated"
    else:  # no mount here: a parent that is a file cannot hold the output either
        (tmp_path / "afile").write_text("x")
        target = tmp_path / "afile" / "curated"
    try:
        with pytest.raises(OutputPathError) as info:
            run_curation([str(notes)], target, cfg)
        assert str(target) in str(info.value) and "\n" not in str(info.value)
    finally:
        subprocess.run(["umount", str(ro)], capture_output=True)
