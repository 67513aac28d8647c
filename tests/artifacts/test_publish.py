"""publish_whole: the one way outputs are published. A crash at any point of a swap leaves the old
output or the new one, whole; never neither, never a mix."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import threading
from pathlib import Path

import pytest

from clinitune.artifacts import publish
from clinitune.artifacts.publish import publish_whole, recover, write_whole

N_FILES = 12


def _write_version(d: Path, version: str) -> None:
    for i in range(N_FILES):
        (d / f"part-{i:02d}.txt").write_text(version * 1000, encoding="utf-8")
    (d / "manifest.json").write_text(json.dumps({"version": version}), encoding="utf-8")


def _version(d: Path) -> str:
    """The one version every file of ``d`` holds (fails on a missing, partial or mixed output)."""
    assert d.is_dir(), f"{d} is missing"
    names = sorted(p.name for p in d.iterdir())
    assert names == sorted([f"part-{i:02d}.txt" for i in range(N_FILES)] + ["manifest.json"]), names
    versions = {p.read_text(encoding="utf-8")[0] for p in d.glob("part-*.txt")}
    versions.add(json.loads((d / "manifest.json").read_text())["version"])
    assert len(versions) == 1, f"mixed output: {versions}"
    return versions.pop()


@pytest.fixture(params=["exchange", "aside"])
def swap_mode(request, monkeypatch):
    if request.param == "exchange" and not publish._exchange_supported:
        pytest.skip("renameat2(RENAME_EXCHANGE) is not available here")
    monkeypatch.setattr(publish, "_exchange_supported", request.param == "exchange")
    return request.param


def test_publishes_new_then_replaces(tmp_path, swap_mode):
    out = tmp_path / "out"
    with publish_whole(out, require="manifest.json") as staging:
        _write_version(staging, "a")
    assert _version(out) == "a"
    with publish_whole(out, require="manifest.json") as staging:
        _write_version(staging, "b")
    assert _version(out) == "b"
    assert [p.name for p in tmp_path.iterdir()] == ["out"]  # no staging or previous copy left


def test_failure_keeps_the_old_output(tmp_path, swap_mode):
    out = tmp_path / "out"
    with publish_whole(out) as staging:
        _write_version(staging, "a")
    with pytest.raises(ValueError, match="boom"):
        with publish_whole(out) as staging:
            (staging / "part-00.txt").write_text("b", encoding="utf-8")
            raise ValueError("boom")
    with pytest.raises(RuntimeError, match="has no manifest.json"):
        with publish_whole(out, require="manifest.json") as staging:
            (staging / "part-00.txt").write_text("b", encoding="utf-8")
    assert _version(out) == "a"
    assert [p.name for p in tmp_path.iterdir()] == ["out"]


def test_keep_existing_keeps_a_complete_output_only(tmp_path, swap_mode):
    out = tmp_path / "out"
    out.mkdir()  # incomplete: no manifest
    with publish_whole(out, require="manifest.json", keep_existing=True) as staging:
        _write_version(staging, "a")
    assert _version(out) == "a"
    with publish_whole(out, require="manifest.json", keep_existing=True) as staging:
        _write_version(staging, "b")
    assert _version(out) == "a"


def test_files_are_replaced_whole(tmp_path):
    p = tmp_path / "state.json"
    write_whole(p, "one")
    write_whole(p, "two")
    with pytest.raises(KeyError):
        with publish_whole(p, file=True) as tmp:
            tmp.write_text("three", encoding="utf-8")
            raise KeyError("x")
    assert p.read_text() == "two"
    assert [x.name for x in tmp_path.iterdir()] == ["state.json"]


def test_recover_restores_an_output_moved_aside(tmp_path):
    out = tmp_path / "out"
    with publish_whole(out) as staging:
        _write_version(staging, "a")
    os.rename(out, tmp_path / ".out.previous-dead")
    (tmp_path / ".out.staging-dead").mkdir()
    recover(out)
    assert _version(out) == "a"
    assert (tmp_path / ".out.staging-dead").exists()  # another writer's staging is left alone by default
    recover(out, stale_staging=True)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]


_CRASH = textwrap.dedent("""
    import json, os, signal, sys
    from pathlib import Path
    from clinitune.artifacts import publish

    out, mode, point, kind = Path(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4]
    publish._exchange_supported = mode == "exchange"

    def die(at):
        if at == point:
            os.kill(os.getpid(), signal.SIGKILL)

    publish._fault_hook = die
    if kind == "file":
        with publish.publish_whole(out, file=True) as tmp:
            tmp.write_text("b" * 100000, encoding="utf-8")
    else:
        with publish.publish_whole(out, require="manifest.json") as staging:
            for i in range(%d):
                (staging / f"part-{i:02d}.txt").write_text("b" * 1000, encoding="utf-8")
            (staging / "manifest.json").write_text(json.dumps({"version": "b"}), encoding="utf-8")
    """ % N_FILES)


@pytest.mark.parametrize("point", ["staged", "moved_aside", "swapped"])
def test_sigkill_at_every_point_of_a_swap_leaves_old_or_new(tmp_path, swap_mode, point):
    if swap_mode == "exchange" and point == "moved_aside":
        pytest.skip("an exchange never moves the old output aside")
    out = tmp_path / "out"
    with publish_whole(out, require="manifest.json") as staging:
        _write_version(staging, "a")
    proc = subprocess.run([sys.executable, "-c", _CRASH, str(out), swap_mode, point, "dir"], capture_output=True, text=True, timeout=120)
    assert proc.returncode == -signal.SIGKILL, proc.stderr[-2000:]
    if swap_mode == "exchange":
        # no window at all: a reader right after the kill finds a whole output
        assert _version(out) == ("a" if point == "staged" else "b")
    recover(out, stale_staging=True)  # what the next writer does first
    assert _version(out) == ("b" if point == "swapped" else "a")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]
    # and the next publish works
    with publish_whole(out, require="manifest.json") as staging:
        _write_version(staging, "c")
    assert _version(out) == "c"


@pytest.mark.parametrize("point", ["staged", "swapped"])
def test_sigkill_while_publishing_a_file(tmp_path, point):
    out = tmp_path / "report.json"
    write_whole(out, "a" * 100000)
    proc = subprocess.run([sys.executable, "-c", _CRASH, str(out), "exchange", point, "file"], capture_output=True, text=True, timeout=120)
    assert proc.returncode == -signal.SIGKILL, proc.stderr[-2000:]
    assert out.read_text() == ("a" if point == "staged" else "b") * 100000


def test_readers_always_find_a_published_output(tmp_path):
    """With the exchange there is no moment without ``out``: a reader opening its manifest always finds one."""
    if not publish._exchange_supported:
        pytest.skip("renameat2(RENAME_EXCHANGE) is not available here")
    out = tmp_path / "out"
    with publish_whole(out, require="manifest.json") as staging:
        _write_version(staging, "a")
    misses: list[str] = []
    reads = 0
    stop = threading.Event()

    def read() -> None:
        nonlocal reads
        while not stop.is_set():
            try:
                json.loads((out / "manifest.json").read_text(encoding="utf-8"))["version"]
                reads += 1
            except (OSError, ValueError) as err:
                misses.append(type(err).__name__)

    reader = threading.Thread(target=read)
    reader.start()
    try:
        for k in range(40):
            with publish_whole(out, require="manifest.json") as staging:
                _write_version(staging, "bc"[k % 2])
    finally:
        stop.set()
        reader.join()
    assert reads > 0 and not misses, misses[:3]


def test_tune_export_keeps_the_previous_export_when_interrupted(tmp_path, monkeypatch):
    from clinitune.artifacts.model import DESCRIPTOR
    from clinitune.tune.runner import _export

    best = tmp_path / "trial" / "artifact"
    best.mkdir(parents=True)
    (best / DESCRIPTOR).write_text("{}", encoding="utf-8")
    out = tmp_path / "best"
    _export(best, out, {"lora": {"r": 4}}, {"trials": 1})
    assert (out / "best_config.yaml").is_file()

    def crash(point: str) -> None:
        if point == "staged":
            raise KeyboardInterrupt  # stands in for a crash between staging and publishing
    monkeypatch.setattr(publish, "_fault_hook", crash)
    with pytest.raises(KeyboardInterrupt):
        _export(best, out, {"lora": {"r": 8}}, {"trials": 2})
    assert "r: 4" in (out / "best_config.yaml").read_text()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["best", "trial"]
