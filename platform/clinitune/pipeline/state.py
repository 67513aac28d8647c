"""Run state, run log and lock of the continuous pipeline.

``<workdir>/pipeline/state.json`` (rewritten atomically) records which input files (by content
hash) have been processed and, per run, which stages finished and what they produced; a run in
progress is ``current`` until it ends, so the next invocation resumes it at its first unfinished
stage. ``runs.log.jsonl`` is the append-only run log (one JSON event per line: time, run, stage,
event, short detail; never note text). ``pipeline.lock`` keeps two invocations (say, overlapping
cron ticks, or two RayJobs whose drivers run on different pods) from running at once. It holds
``<pid>@<host>`` and its holder touches it every ``HEARTBEAT_S`` seconds. A lock is taken over
when its holder is known to be gone: a dead process on this host, or, for a holder on another
host (whose process cannot be checked from here), no heartbeat for ``STALE_AFTER_S`` seconds.
"""

from __future__ import annotations

import json
import os
import socket
import threading
import time
from pathlib import Path
from typing import Any

from clinitune.artifacts.publish import write_whole
from clinitune.errors import UserError

STATE_FILE = "state.json"
LOG_FILE = "runs.log.jsonl"
LOCK_FILE = "pipeline.lock"
HEARTBEAT_S = 30.0
STALE_AFTER_S = 600.0


def _now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


class PipelineState:
    def __init__(self, root: str | Path):
        self.root = Path(root)
        self.root.mkdir(parents=True, exist_ok=True)
        self.path = self.root / STATE_FILE
        self.log_path = self.root / LOG_FILE
        if self.path.is_file():
            try:
                self.data = json.loads(self.path.read_text(encoding="utf-8"))
            except json.JSONDecodeError:
                raise UserError(f"pipeline state '{self.path}' is not valid JSON.",
                                fix="restore it from a backup, or move it away to start over (inputs will be processed again).") from None
        else:
            self.data = {"format": "clinitune.pipeline_state/1", "processed": {}, "runs": {}, "current": None}

    # --- persistence -------------------------------------------------------------------------

    def save(self) -> None:
        write_whole(self.path, json.dumps(self.data, indent=2, default=str))

    def log(self, run_id: str | None, stage: str | None, event: str, **detail: Any) -> None:
        entry = {"at": _now(), "run_id": run_id, "stage": stage, "event": event, **detail}
        with open(self.log_path, "a", encoding="utf-8") as fh:
            fh.write(json.dumps(entry, default=str) + "\n")

    # --- runs ----------------------------------------------------------------------------------

    @property
    def current(self) -> str | None:
        return self.data.get("current")

    def run(self, run_id: str) -> dict:
        return self.data["runs"][run_id]

    def new_run(self, run_id: str, files: list[dict]) -> dict:
        run = {"run_id": run_id, "status": "running", "started_at": _now(), "files": files, "stages": {}}
        self.data["runs"][run_id] = run
        self.data["current"] = run_id
        self.save()
        return run

    def stage_done(self, run_id: str, stage: str) -> bool:
        return self.run(run_id)["stages"].get(stage, {}).get("status") == "done"

    def stage_output(self, run_id: str, stage: str) -> dict:
        return self.run(run_id)["stages"].get(stage, {}).get("output", {})

    def mark_stage(self, run_id: str, stage: str, status: str, output: dict | None = None, seconds: float | None = None) -> None:
        rec = {"status": status, "at": _now()}
        if output is not None:
            rec["output"] = output
        if seconds is not None:
            rec["seconds"] = round(seconds, 1)
        self.run(run_id)["stages"][stage] = rec
        self.save()

    def finish(self, run_id: str, status: str) -> None:
        run = self.run(run_id)
        run["status"] = status
        run["finished_at"] = _now()
        for f in run["files"]:
            self.data["processed"][f["sha256"]] = {"run_id": run_id, "name": f["name"]}
        self.data["current"] = None
        self.save()

    def is_processed(self, sha256: str) -> bool:
        return sha256 in self.data["processed"]


class Lock:
    """An exclusive lock file holding ``<pid>@<host>``, touched while held; stale locks are taken over."""

    def __init__(self, root: str | Path, *, heartbeat_s: float = HEARTBEAT_S, stale_after_s: float = STALE_AFTER_S):
        self.path = Path(root) / LOCK_FILE
        self.heartbeat_s = heartbeat_s
        self.stale_after_s = stale_after_s
        self.held = False
        self._stop = threading.Event()
        self._beat: threading.Thread | None = None

    @staticmethod
    def _alive(pid: int) -> bool:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return False
        except PermissionError:
            return True
        return True

    def _holder(self) -> tuple[int, str, float] | None:
        """(pid, host, seconds since the last heartbeat) of the current holder; None when the file is gone."""
        try:
            owner = self.path.read_text().strip()
            age = time.time() - self.path.stat().st_mtime
        except FileNotFoundError:
            return None
        except OSError:
            return 0, "", float("inf")
        pid, _, host = owner.partition("@")
        try:
            return int(pid or 0), host, age
        except ValueError:
            return 0, "", float("inf")

    def acquire(self) -> None:
        me = socket.gethostname()
        for _ in range(2):
            try:
                fd = os.open(self.path, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
            except FileExistsError:
                holder = self._holder()
                if holder is None:
                    continue  # released meanwhile
                pid, host, age = holder
                if host and host != me:
                    if age < self.stale_after_s:
                        raise UserError(f"another pipeline run (pid {pid} on host {host}) holds '{self.path}' (heartbeat {age:.0f}s ago).",
                                        fix=f"wait for it to finish; it is taken over by itself after {self.stale_after_s:.0f}s without a heartbeat.") from None
                elif pid and pid != os.getpid() and self._alive(pid):
                    raise UserError(f"another pipeline run (pid {pid}) holds '{self.path}'.",
                                    fix="wait for it to finish; remove the lock file only if that process is gone.") from None
                self.path.unlink(missing_ok=True)  # stale
                continue
            with os.fdopen(fd, "w") as fh:
                fh.write(f"{os.getpid()}@{me}")
            self.held = True
            self._stop.clear()
            self._beat = threading.Thread(target=self._heartbeat, name="pipeline-lock-heartbeat", daemon=True)
            self._beat.start()
            return
        raise UserError(f"cannot take the pipeline lock '{self.path}'.", fix="remove the stale lock file and retry.")

    def _heartbeat(self) -> None:
        while not self._stop.wait(self.heartbeat_s):
            try:
                os.utime(self.path)
            except OSError:
                pass  # the next acquire by someone else will judge it by its age

    def release(self) -> None:
        if self.held:
            self._stop.set()
            if self._beat is not None:
                self._beat.join(timeout=5)
                self._beat = None
            self.path.unlink(missing_ok=True)
            self.held = False

    def __enter__(self) -> "Lock":
        self.acquire()
        return self

    def __exit__(self, *exc) -> None:
        self.release()
