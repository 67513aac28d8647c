"""Failure recovery: a worker SIGKILLed mid-run and a whole job killed and submitted again.

One run goes through both: the job is started as a real ``clinitune train`` process attached to
the shared Ray; a worker is SIGKILLed (Ray Train restarts the worker group from the last
checkpoint, FailureConfig), then the driver process itself is SIGKILLed, and the same config
is run again (it resumes from the run's last checkpoint). The run must end at the planned step
count, with a strictly increasing step history and every training token counted exactly once
per epoch: the data position was restored, not only the weights.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

pytestmark = pytest.mark.ray


def _status(status_dir: Path) -> dict[int, dict]:
    out = {}
    for f in status_dir.glob("rank-*.json"):
        try:
            d = json.loads(f.read_text())
        except (json.JSONDecodeError, OSError):
            continue
        out[d["rank"]] = d
    return out


def _wait(pred, proc, what: str, timeout: float = 240.0) -> dict:
    deadline = time.time() + timeout
    while time.time() < deadline:
        got = pred()
        if got:
            return got
        if proc.poll() is not None:
            out = proc.stdout.read() if proc.stdout else ""
            pytest.fail(f"training process exited ({proc.returncode}) before {what}: {out[-2000:]}")
        time.sleep(0.05)
    pytest.fail(f"timed out waiting for {what}")


def test_worker_sigkill_and_job_restart_resume_from_checkpoint(ray_session, make_cfg, tmp_path):
    from clinitune.data.build import load_manifest
    from clinitune.train.artifact import load_artifact
    from clinitune.train.trainer import prepare, run_finetune

    cfg = make_cfg(scaling__num_workers=2, scaling__max_failures=2, training__epochs=2,
                   training__log_every_n_steps=1, checkpoint__every_n_steps=2, checkpoint__num_to_keep=2,
                   checkpoint__run_name="resume-under-test", eval__every_n_steps=None, tracking__enabled=False)
    prep = prepare(cfg)  # builds (or finds) the dataset, so the job below starts training quickly
    status_dir = prep.status_dir
    cfg_file = tmp_path / "finetune.yaml"
    cfg_file.write_text(yaml.safe_dump(cfg.model_dump(mode="json")))

    env = dict(os.environ, RAY_ADDRESS=ray_session.get_runtime_context().gcs_address)
    job = subprocess.Popen([sys.executable, "-m", "clinitune.cli.main", "train", "--config", str(cfg_file)],
                           env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        # 1. a worker dies mid-run, once a checkpoint is committed
        def committed():
            s = _status(status_dir)
            return s if s.get(0, {}).get("committed_step") and 1 in s else None

        first = _wait(committed, job, "the first committed checkpoint")
        assert first[0]["step"] < 16, "the run finished before the test could interrupt it"
        os.kill(first[1]["pid"], signal.SIGKILL)

        # 2. Ray Train restarts the worker group from a checkpoint; let it commit a later one
        def resumed_and_committed():
            s = _status(status_dir).get(0, {})
            if s.get("resumed_from_step") is not None and (s.get("committed_step") or 0) > s["resumed_from_step"]:
                return s
            return None

        after_worker_kill = _wait(resumed_and_committed, job, "the restarted worker group to commit a checkpoint")
        assert after_worker_kill["pid"] != first[0]["pid"]
        assert after_worker_kill["resumed_from_step"] >= first[0]["committed_step"]
        assert after_worker_kill["step"] < 16, "the run finished before the test could kill the job"

        # 3. the whole job dies
        job.send_signal(signal.SIGKILL)
        job.wait(timeout=30)
    finally:
        if job.poll() is None:
            job.kill()
    time.sleep(3)  # Ray reaps the dead driver's controller and workers

    # 4. the same config again resumes from the run's last checkpoint and finishes
    artifact = run_finetune(cfg)
    metrics = json.loads((artifact / "metrics.json").read_text())
    final, history = metrics["final"], metrics["history"]
    assert final["step"] == final["total_steps"] == 16  # 64 sequences / 2 workers / batch 4 = 8 steps x 2 epochs
    assert final["restarts"] == 2
    assert final["resumed_from_step"] >= after_worker_kill["committed_step"]
    steps = [h["step"] for h in history if "train_loss" in h]
    assert steps == sorted(set(steps)) and steps[-1] == 16
    train_tokens = load_manifest(prep.dataset_dir)["splits"]["train"]["tokens"]
    assert final["tokens_seen"] == 2 * train_tokens
    assert load_artifact(artifact)["run_name"] == "resume-under-test"


@pytest.mark.slow
def test_submitting_a_finished_run_again_only_reexports_it(ray_session, make_cfg):
    from clinitune.train.trainer import run_finetune

    cfg = make_cfg(training__max_steps=3, eval__every_n_steps=None, checkpoint__run_name="finished-run",
                   tracking__enabled=False)
    artifact = run_finetune(cfg)
    adapter_bytes = (artifact / "adapter" / "adapter_model.safetensors").read_bytes()
    again = run_finetune(cfg)
    final = json.loads((again / "metrics.json").read_text())["final"]
    assert final["step"] == 3 and final["restarts"] == 1
    assert (again / "adapter" / "adapter_model.safetensors").read_bytes() == adapter_bytes
