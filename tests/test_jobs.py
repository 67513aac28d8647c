"""The job entrypoints: thin (each is one ``clinitune`` command, parsed by the CLI's own parser),
and working as cluster users submit them: through Ray's job API, from a checkout, to a cluster whose
Python has Clinitune's dependencies but not the package."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
# job file -> the command it runs
JOBS = {"curate": ["curate"], "train": ["train"], "tune": ["tune"], "evaluate": ["evaluate"],
        "pipeline": ["pipeline", "run"], "demo": ["pipeline", "demo"]}


def _job_module(name: str):
    import importlib.util

    spec = importlib.util.spec_from_file_location(f"clinitune_job_{name}", ROOT / "jobs" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_every_job_is_known_here():
    assert {p.stem for p in (ROOT / "jobs").glob("*.py") if not p.stem.startswith("_")} == set(JOBS)


@pytest.mark.parametrize("name", sorted(JOBS))
def test_a_job_is_its_cli_command_with_the_clis_own_flags(name, capsys, monkeypatch):
    """`python jobs/<job>.py --help` is `clinitune <command> --help`: no flag is declared twice."""
    from clinitune.cli.main import main

    monkeypatch.setenv("CLINITUNE_SHIP_PACKAGE", "0")  # restored after: the job may set it

    source = (ROOT / "jobs" / f"{name}.py").read_text(encoding="utf-8")
    assert not any(word in source for word in ("argparse", "typer", "add_argument")), f"jobs/{name}.py parses its own flags"
    assert _job_module(name).main(["--help"]) == 0
    job_help = capsys.readouterr().out
    assert main([*JOBS[name], "--help"]) == 0
    assert job_help == capsys.readouterr().out and "--config" in job_help


def test_a_job_passes_its_default_config_from_configs_beside_it(tmp_path, monkeypatch):
    """Run from anywhere: the default config is jobs/configs/<job>.yaml of the job's own checkout."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("CLINITUNE_SHIP_PACKAGE", "0")
    seen = {}

    def cli(argv):
        seen["argv"] = argv
        return 0

    monkeypatch.setattr("clinitune.cli.main.main", cli)
    assert _job_module("curate").main(["--input", "x"]) == 0
    assert seen["argv"] == ["curate", "--config", str(ROOT / "jobs" / "configs" / "curate.yaml"), "--input", "x"]
    assert _job_module("train").main(["-c", "mine.yaml"]) == 0
    assert seen["argv"] == ["train", "-c", "mine.yaml"]


def test_a_job_without_the_package_says_the_two_ways_to_provide_it(tmp_path):
    """A Python without clinitune (no site-packages) and a working dir without platform/: one line."""
    shutil.copytree(ROOT / "jobs", tmp_path / "jobs", ignore=shutil.ignore_patterns("__pycache__"))
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    run = subprocess.run([sys.executable, "-S", "jobs/curate.py", "--input", "notes"], cwd=tmp_path, env=env,
                         capture_output=True, text=True, timeout=120)
    assert run.returncode == 2, run.stderr[-2000:]
    lines = run.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in run.stderr, run.stderr[-2000:]
    assert "the clinitune package is not available to this job" in lines[0]
    assert "ray job submit --working-dir ." in lines[0] and "install it on every node" in lines[0]


def _nodes_python(tmp: Path) -> Path:
    """A Python with every dependency of the test venv and no clinitune: a venv whose only path
    entry is the test venv's site-packages, so that directory's .pth files (the editable install
    of clinitune among them) are not run."""
    import site

    env_dir = tmp / "nodes-venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(env_dir)], check=True, timeout=120)
    site_dir = next(Path(p) for p in site.getsitepackages() if (Path(p) / "ray").is_dir())
    target = next((env_dir / "lib").glob("python3*/site-packages"))
    (target / "deps.pth").write_text(str(site_dir) + "\n", encoding="utf-8")
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    probe = subprocess.run([str(env_dir / "bin" / "python"), "-c", "import ray, torch; import clinitune"],
                           capture_output=True, text=True, timeout=120, cwd=tmp, env=env)
    assert "No module named 'clinitune'" in probe.stderr, probe.stderr[-1000:]
    (env_dir / "bin" / "ray").write_text(f"#!{env_dir / 'bin' / 'python'}\nimport sys\nfrom ray.scripts.scripts import main\n"
                                         "sys.exit(main())\n", encoding="utf-8")
    (env_dir / "bin" / "ray").chmod(0o755)
    return env_dir / "bin"


def _checkout(tmp: Path, with_package: bool = True) -> Path:
    """What `ray job submit --working-dir .` uploads from a checkout: jobs/ and platform/."""
    d = tmp / ("checkout" if with_package else "no-package")
    shutil.copytree(ROOT / "jobs", d / "jobs", ignore=shutil.ignore_patterns("__pycache__"))
    if with_package:
        shutil.copytree(ROOT / "platform", d / "platform", ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
    return d


def _run_job(client, entrypoint: str, working_dir: Path, timeout: float = 1500) -> tuple[str, str]:
    from ray.job_submission import JobStatus

    job = client.submit_job(entrypoint=entrypoint, runtime_env={"working_dir": str(working_dir)})
    deadline = time.time() + timeout
    while time.time() < deadline:
        status = client.get_job_status(job)
        if status in (JobStatus.SUCCEEDED, JobStatus.FAILED, JobStatus.STOPPED):
            return str(status), client.get_job_logs(job)
        time.sleep(2)
    client.stop_job(job)
    return "TIMEOUT", client.get_job_logs(job)


@pytest.mark.slow
def test_jobs_submitted_from_a_checkout_run_on_both_nodes_without_the_package_installed(local_cluster, tmp_path):
    from ray.job_submission import JobSubmissionClient

    from clinitune.models.tiny import create_tiny_model
    from clinitune.synth.generate import SynthOptions
    from clinitune.synth.writer import generate_dataset

    bin_dir = _nodes_python(tmp_path)
    notes = generate_dataset(80, tmp_path / "notes", seed=3, options=SynthOptions(dup_rate=0.0, near_dup_rate=0.0), use_ray=False).out_dir
    model = create_tiny_model(tmp_path / "tiny", hidden_size=32, num_layers=2)
    curated, work = tmp_path / "curated", tmp_path / "work"
    (tmp_path / "curate.yaml").write_text("reader: {chunk_bytes: 4096}\nboilerplate: {min_notes: 5}\nexecution: {batch_size: 8}\n")
    (tmp_path / "train.yaml").write_text(json.dumps({
        "model": str(model), "method": "lora",
        "data": {"source": str(curated), "max_seq_len": 384, "overlong": "truncate", "cache_dir": str(tmp_path / "datasets"),
                 "task": {"name": "icd10_coding", "options": {"max_note_chars": 300}}},
        "lora": {"r": 4, "alpha": 8},
        "training": {"max_steps": 4, "batch_size": 2, "log_every_n_steps": 2, "shuffle_buffer": 0},
        "eval": {"every_n_steps": None}, "checkpoint": {"every_n_steps": 2, "run_name": "submitted"},
        # 1.5 CPUs a worker on nodes of 2: the two workers cannot share a node
        "scaling": {"num_workers": 2, "cpus_per_worker": 1.5, "max_failures": 0},
        "tracking": {"enabled": False}, "workdir": str(work), "output_dir": str(work / "artifact"),
    }))
    (tmp_path / "evaluate.yaml").write_text(json.dumps({
        "candidate": str(work / "artifact"), "data": str(curated), "max_examples": 3, "loss": False,
        "generation": {"max_new_tokens": 8}, "probes": {"enabled": False}, "canaries": {"enabled": False},
        "consistency": {"enabled": False}, "hallucination": False, "workdir": str(work), "output_dir": str(work / "eval"),
    }))
    nodes_env = {"PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}", "RAY": str(bin_dir / "ray"), "PYTHONPATH": ""}
    with local_cluster(workers=1, cpus=2, dashboard=True, env=nodes_env) as cluster:
        # the cluster's token (local_cluster.sh generated it); this process's own Ray runs without auth
        token = Path(os.environ.get("RAY_AUTH_TOKEN_PATH", Path.home() / ".ray" / "auth_token")).read_text().strip()
        client = JobSubmissionClient(cluster.dashboard, headers={"Authorization": f"Bearer {token}"})

        status, logs = _run_job(client, "python jobs/curate.py --input notes --output out", _checkout(tmp_path, with_package=False))
        assert status == "FAILED", logs[-3000:]
        assert "the clinitune package is not available to this job" in logs and "--working-dir ." in logs
        assert "image built from cluster/Dockerfile" in logs and "Traceback" not in logs

        checkout = _checkout(tmp_path)
        status, logs = _run_job(client, f"python jobs/curate.py --input {notes} --output {curated} --config {tmp_path / 'curate.yaml'}", checkout)
        assert status == "SUCCEEDED", logs[-3000:]
        assert "joined Ray cluster at" in logs and "(2 nodes: 4 CPUs" in logs
        m = json.loads((curated / "manifest.json").read_text())
        assert m["reconciles"] and len(m["execution"]["nodes"]) == 2, m["execution"]

        status, logs = _run_job(client, f"python jobs/train.py --config {tmp_path / 'train.yaml'}", checkout)
        assert status == "SUCCEEDED", logs[-3000:]
        assert (work / "artifact" / "clinitune_artifact.json").is_file()
        ranks = [json.loads(p.read_text()) for p in sorted((work / "runs" / "submitted" / "workers").glob("rank-*.json"))]
        assert len({r["node_id"] for r in ranks}) == 2, ranks

        status, logs = _run_job(client, f"python jobs/evaluate.py --config {tmp_path / 'evaluate.yaml'}", checkout)
        assert status == "SUCCEEDED", logs[-3000:]
        report = json.loads((work / "eval" / "report.json").read_text())
        assert 1 <= report["data"]["examples"] <= 3 and "candidate" in report["metrics"]
