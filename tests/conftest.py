"""Shared fixtures. One session-scoped local Ray cluster serves every Ray test; ``write_toy_curated``
writes a small curated dataset for the stages that read one; ``chromium`` and ``review_server``
are a real headless browser and a real ``clinitune review serve`` for the web-page tests."""

from __future__ import annotations

import hashlib
import json
import os
import random
import shutil
import socket
import subprocess
import sys
import time
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


@pytest.fixture(scope="session")
def ray_session():
    """A local Ray instance of its own shared by the whole test session (2 logical CPUs more than
    cores is fine). address="local": a head node someone started on this machine (``ray start
    --head``) or $RAY_ADDRESS is never joined by accident."""
    import ray
    from ray.data import DataContext

    from clinitune.ray_utils import LOCAL, LOCAL_SYSTEM_CONFIG

    if not ray.is_initialized():
        ray.init(
            address=LOCAL, num_cpus=4, include_dashboard=False, log_to_driver=False, ignore_reinit_error=True,
            _system_config=LOCAL_SYSTEM_CONFIG,
        )
    ctx = DataContext.get_current()
    ctx.enable_progress_bars = False
    yield ray
    ray.shutdown()


# --- a real multi-node cluster beside the session's Ray -------------------------------------------


@dataclass
class LocalCluster:
    address: str  # the head's GCS address (host:port)
    dashboard: str | None  # the job API (http://host:port) when started with one
    ray_tmpdir: str  # RAY_TMPDIR under which `ray start` recorded it as this machine's current cluster
    env: dict  # the environment its nodes run in: clients that should reach it use it too


def _free_port_block(size: int = 32) -> int:
    """A base port P with P..P+size free now (local_cluster.sh derives every port of a node from P)."""
    rng = random.Random(os.getpid() ^ time.time_ns())

    def free(port: int) -> bool:
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
                return True
            except OSError:
                return False

    for _ in range(500):
        base = rng.randrange(21000, 29000)
        if all(free(p) for p in range(base, base + size)):
            return base
    raise RuntimeError("no free block of ports")


@contextmanager
def local_cluster(workers: int = 1, cpus: int = 1, *, dashboard: bool = False, env: dict | None = None):
    """A head (+ ``workers`` nodes) started with cluster/local_cluster.sh on ports and a temp dir of
    its own, stopped by its own process sessions (never `ray stop`: other Ray instances run beside)."""
    base = _free_port_block()
    tmp = Path(f"/tmp/ct{os.getpid()}-{base}")  # short: Ray's socket paths must stay under 108 bytes
    env = {
        **os.environ,
        "CLINITUNE_CLUSTER_PORT": str(base),
        "CLINITUNE_CLUSTER_TMP": str(tmp / "ray"),
        "RAY_AUTH_MODE": "token",
        "RAY": str(Path(sys.executable).parent / "ray"),
        "RAY_USAGE_STATS_ENABLED": "0",
        **(env or {}),
    }
    env.pop("RAY_ADDRESS", None)
    cmd = [str(ROOT / "cluster" / "local_cluster.sh"), "start", "--workers", str(workers), "--cpus-per-node", str(cpus)]
    if dashboard:
        cmd += ["--dashboard-port", str(base + 30)]
    stop = [str(ROOT / "cluster" / "local_cluster.sh"), "stop"]
    try:
        for attempt in (1, 2):
            try:
                subprocess.run(cmd, check=True, env=env, timeout=300, capture_output=True, text=True)
                break
            except subprocess.CalledProcessError as err:
                # Ray gives a node 30 s to register (not configurable); on a machine loaded far past
                # its cores that can run out: one more try from a clean slate
                if attempt == 2 or "timed out during startup" not in err.stderr:
                    raise
                subprocess.run(stop, env=env, timeout=120, capture_output=True)
        yield LocalCluster(f"127.0.0.1:{base}", f"http://127.0.0.1:{base + 30}" if dashboard else None, str(tmp), env)
    except subprocess.CalledProcessError as err:
        pytest.fail(f"local_cluster.sh start failed: {err.stderr[-2000:]}")
    finally:
        subprocess.run(stop, env=env, timeout=120, capture_output=True)
        shutil.rmtree(tmp, ignore_errors=True)


@pytest.fixture(name="local_cluster")
def local_cluster_fixture():
    """``with local_cluster(workers=1, cpus=1, dashboard=False) as c:`` a real cluster beside the session's."""
    return local_cluster


# --- a small curated dataset ----------------------------------------------------------------------
# Each note mentions a few conditions in plain words and carries their ICD-10-CM codes in
# attributes.icd10, so the coding task is learnable. Everything is synthetic (no PHI).

CONDITIONS = [
    ("I10", "essential hypertension"), ("E11.9", "type 2 diabetes mellitus"), ("J44.9", "COPD"),
    ("N18.3", "chronic kidney disease stage 3"), ("E78.5", "hyperlipidemia"), ("K21.9", "GERD"),
    ("F32.A", "depression"), ("M54.5", "low back pain"), ("J18.9", "pneumonia"), ("I48.91", "atrial fibrillation"),
]
NOTE_TYPES = ["progress", "discharge", "nursing", "radiology"]


def _toy_note(rng: random.Random, index: int) -> dict:
    k = rng.randint(1, 3)
    chosen = rng.sample(CONDITIONS, k)
    body = " ".join(
        rng.choice([f"History of {name}.", f"Patient with {name}, stable.", f"Assessment: {name}, continue current plan."])
        for _, name in chosen
    )
    text = f"[NAME] is a [AGE] year old seen on [DATE]. {body} Vitals within normal limits. Follow up in clinic."
    return {
        "note_id": f"toy-{index:06d}",
        "patient_id": f"p-{index // 2:06d}",
        "text": text,
        "note_type": rng.choice(NOTE_TYPES),
        "note_date": f"2024-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}",
        "source": "toy",
        "attributes": json.dumps({"icd10": sorted(c for c, _ in chosen), "sex": rng.choice("FM"),
                                  "age_band": rng.choice(["18-44", "45-64", "65-89"])}),
        "quality_score": 1.0,
    }


def _write_toy_curated(out: str | Path, n_train: int = 64, n_validation: int = 16, n_test: int = 0, seed: int = 0) -> Path:
    """Write ``out/{train,validation[,test]}/part-0.parquet`` and the manifest."""
    import pandas as pd

    from clinitune.artifacts.curated import MANIFEST

    out = Path(out)
    rng = random.Random(seed)
    index = 0
    counts = {}
    for split, n in (("train", n_train), ("validation", n_validation), ("test", n_test)):
        if n <= 0:
            continue
        rows = [_toy_note(rng, index + i) for i in range(n)]
        index += n
        (out / split).mkdir(parents=True, exist_ok=True)
        pd.DataFrame(rows).to_parquet(out / split / "part-0.parquet", index=False)
        counts[split] = n
    digest = hashlib.sha256(json.dumps([seed, counts], sort_keys=True).encode()).hexdigest()
    (out / MANIFEST).write_text(json.dumps({"dataset_hash": digest, "splits": counts, "source": "toy"}, indent=2))
    return out


@pytest.fixture(scope="session")
def write_toy_curated():
    """``write_toy_curated(out, n_train=64, n_validation=16, n_test=0, seed=0) -> out``: a curated dataset."""
    return _write_toy_curated


# --- real browser and a real review server (tests/review, tests/pipeline) -------------------------

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]


@pytest.fixture(scope="module")
def chromium():
    """Debian's headless Chromium driven by Playwright (``make setup`` installs both).

    Module-scoped on purpose: Playwright's sync API keeps an asyncio loop running on the main
    thread until it stops, and later tests that call ``asyncio.run`` or a Serve handle's
    ``.result()`` fail inside it ("cannot be called from a running event loop")."""
    if not os.path.exists(CHROMIUM):
        pytest.fail(f"{CHROMIUM} is missing: run `make setup` (it installs Debian's chromium package)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="session")
def review_server(tmp_path_factory):
    """``start(database_url, workdir) -> base URL``: ``clinitune review serve`` in a subprocess on a free port."""
    import subprocess
    import sys
    import time
    import urllib.request
    from pathlib import Path

    procs = []
    platform_dir = str(Path(__file__).resolve().parents[1] / "platform")

    def start(database_url: str, workdir: str | Path, **env) -> str:
        port = _free_port()
        log = Path(tmp_path_factory.mktemp("review-server")) / "serve.log"
        environ = {**os.environ, "PYTHONPATH": platform_dir + os.pathsep + os.environ.get("PYTHONPATH", ""), **env}
        fh = open(log, "w")
        proc = subprocess.Popen([sys.executable, "-m", "clinitune.cli.main", "review", "serve", "--db", database_url,
                                 "--workdir", str(workdir), "--port", str(port)], stdout=fh, stderr=subprocess.STDOUT, env=environ)
        procs.append((proc, fh))
        url = f"http://127.0.0.1:{port}"
        deadline = time.time() + 60
        while time.time() < deadline:
            if proc.poll() is not None:
                pytest.fail(f"review server exited ({proc.returncode}): {log.read_text()[-2000:]}")
            try:
                with urllib.request.urlopen(url + "/healthz", timeout=2) as r:
                    if r.status == 200:
                        return url
            except OSError:
                time.sleep(0.2)
        pytest.fail(f"review server did not start: {log.read_text()[-2000:]}")

    yield start
    for proc, fh in procs:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        fh.close()
