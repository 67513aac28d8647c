"""Connecting to Ray as cluster users do: a head started with `ray start --head` on this machine is
joined (one line says which, with its resources), `local` forces a fresh instance, and an address
nobody answers at is one line saying how to start or point at a cluster."""

from __future__ import annotations

import json
import socket
import subprocess
import sys

import pytest

CONNECT = ("from clinitune.ray_utils import connect; connect({arg}); import ray; "
           "print(ray.get_runtime_context().gcs_address); ray.shutdown()")


def _python(code: str, env: dict, timeout: int = 180) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=timeout)


def test_a_running_head_is_joined_without_an_address_and_local_forces_a_fresh_instance(local_cluster, tmp_path):
    notes = tmp_path / "notes.jsonl"
    notes.write_text("".join(json.dumps({"note_id": f"n{i}", "patient_id": f"p{i % 3}", "text": f"Seen for cough, day {i}."}) + "\n"
                             for i in range(12)))
    with local_cluster(workers=0, cpus=2) as cluster:
        # where `ray start` recorded the head; no RAY_AUTH_MODE, as for a user who just ran
        # `ray start --head` (token authentication on: Ray turns it on when a token exists)
        env = {**cluster.env, "RAY_TMPDIR": cluster.ray_tmpdir}
        env.pop("RAY_AUTH_MODE")
        port = cluster.address.rsplit(":", 1)[1]
        joined = _python(CONNECT.format(arg=""), env)
        assert joined.returncode == 0, joined.stderr[-2000:]
        gcs = joined.stdout.strip().splitlines()[-1]
        assert gcs.endswith(f":{port}"), gcs  # the head's GCS (Ray records it under the node's IP)
        line = [ln for ln in joined.stderr.splitlines() if "joined Ray cluster" in ln]
        assert len(line) == 1 and line[0].startswith(f"joined Ray cluster at {gcs} (1 node: 2 CPUs, 0 GPUs, "), joined.stderr[-2000:]
        assert line[0].endswith(" GiB memory)")
        assert "Connecting to existing Ray cluster" not in joined.stderr  # Ray's own narration stays quiet

        # an address given is joined as given: without RAY_AUTH_MODE=token the head refuses, in one line
        refused = subprocess.run([sys.executable, "-m", "clinitune.cli.main", "curate", "--input", str(notes),
                                  "--output", str(tmp_path / "refused"), "--ray-address", cluster.address],
                                 capture_output=True, text=True, env=env, timeout=300)
        assert refused.returncode == 2, refused.stderr[-2000:]
        assert len(refused.stderr.strip().splitlines()) == 1 and "Traceback" not in refused.stderr, refused.stderr[-2000:]
        assert f"the Ray cluster at '{cluster.address}' uses token authentication" in refused.stderr
        assert "RAY_AUTH_MODE=token" in refused.stderr

        fresh = _python(CONNECT.format(arg="'local', num_cpus=1"), env)
        assert fresh.returncode == 0, fresh.stderr[-2000:]
        assert not fresh.stdout.strip().splitlines()[-1].endswith(f":{port}")
        assert "joined" not in fresh.stderr

        # every command works on it: a curation run (the CLI used to pass _system_config and crash)
        run = subprocess.run([sys.executable, "-m", "clinitune.cli.main", "curate", "--input", str(notes), "--output", str(tmp_path / "out")],
                             capture_output=True, text=True, env=env, timeout=600)
        assert run.returncode == 0, run.stderr[-2000:]
        assert f"joined Ray cluster at {gcs} (1 node" in run.stderr
        assert (tmp_path / "out" / "manifest.json").is_file()


def test_an_address_nobody_answers_at_is_one_line_naming_it(tmp_path):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # free, and nothing listens once the socket closes
    (tmp_path / "n.jsonl").write_text('{"note_id": "a", "patient_id": "p", "text": "x"}\n')
    run = subprocess.run([sys.executable, "-m", "clinitune.cli.main", "curate", "--input", str(tmp_path / "n.jsonl"), "--output",
                          str(tmp_path / "out"), "--ray-address", f"127.0.0.1:{port}"],
                         capture_output=True, text=True, timeout=180)
    assert run.returncode == 2, run.stderr[-2000:]
    lines = run.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in run.stderr
    assert f"no Ray cluster answers at '127.0.0.1:{port}'" in lines[0]
    assert "ray start --head" in lines[0] and "--ray-address local" in lines[0]
