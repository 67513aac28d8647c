"""Serving under faults and load: replicas SIGKILLed under steady traffic, overload, cluster-wide rate
limits, and a memory soak.

The application is ``clinitune.serve.app:build_app`` on a local Ray with 2 logical CPUs (fractional
CPUs per replica, so every replica fits): 2 gateway replicas, 2 generator replicas serving a tiny
random-init Llama (so thousands of requests fit in minutes on 2 cores; the model is not what is
measured), the coordinator, the PHI guard on the output (rules detector) and the audit log. The
load generator is the official ``openai`` async client at a fixed concurrency: each of ``--clients``
clients sends its next short chat request (``--max-tokens``) as soon as the last one returned.

Phases (one run, one traffic stream, timestamps of every request kept):

* ``generator_kill`` — ``--phase-s`` of steady traffic, then one generator replica SIGKILLed; Serve
  restarts it; ``--phase-s`` more after the restart. Clients do not retry (``max_retries=0``):
  what succeeds is what the server saved. Success rate, p50/p99 before / during (kill to restart)
  / after, and recovery time: from the replacement replica's start to the first 5 s window whose
  throughput is back to 90 % of the pre-fault mean.
* ``gateway_kill`` — the same with one gateway replica SIGKILLed. Half the clients do not retry;
  the other half use the openai client's own retries (``max_retries=2``) with an
  ``Idempotency-Key`` per request, the way a careful client runs.
* ``overload`` — ``--overload-clients`` clients for ``--overload-s`` against the bounded queue (each
  waits the ``retry-after`` it is told): how fast a request that cannot be served is turned away,
  and with which status, beside two floors measured at the same time (GET /health, and a POST the
  gateway answers with a 404 before any generator call).
* ``rate_limit`` — a key limited to ``--rate`` requests/minute (burst 1) hammered through both
  gateways: accepted rate / configured rate.
* ``soak`` — ``--soak-minutes`` of steady traffic; the resident memory of every replica process
  sampled every 10 s; the slope (MB/minute, least squares after the first 20 %) per process.

The baseline is the run itself: figures during and after a fault are compared with the same run's
pre-fault figures. The machine's load average is recorded beside every phase.

    python benchmarks/serve_chaos.py [--clients 32] [--phase-s 60] [--max-tokens 8] [--soak-minutes 10]
                                     [--skip PHASE ...] [--workdir work/bench/chaos]

Prints one JSON object (progress on stderr).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import signal
import socket
import sys
import threading
import time
import uuid
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

APP = "serve-chaos"  # process titles carry it: ray::ServeReplica:serve-chaos:<Deployment>
KEY, RATED_KEY, WARM_KEY = "ct-chaos-key", "ct-chaos-rated", "ct-chaos-warm"
PROMPTS = ["Patient admitted with type 2 diabetes mellitus; history of hypertension. List the codes.",
           "Chest pain on exertion, known COPD. Which ICD-10-CM codes apply?",
           "Community acquired pneumonia treated with antibiotics. Codes?",
           "Atrial fibrillation on anticoagulation, CKD stage 3. List the codes."]


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def load() -> list[float]:
    return [round(x, 1) for x in os.getloadavg()]


def pct(values: list[float], q: float) -> float | None:
    import numpy as np

    return round(float(np.percentile(values, q)), 3) if values else None


# -- the application ------------------------------------------------------------------------------
def start_app(workdir: Path, args_ns) -> tuple[str, object]:
    import httpx
    import ray
    from ray import serve

    from clinitune.models.tiny import create_tiny_model
    from clinitune.serve.app import build_app
    from clinitune.serve.auth import hash_key
    from clinitune.serve.config import ServeArgs

    model = workdir / "tiny-llama"
    if not (model / "config.json").is_file():
        create_tiny_model(model, hidden_size=64, num_layers=2, max_positions=512)
    args = ServeArgs.model_validate({
        "workdir": str(workdir),
        "model": {"base": str(model), "max_tokens_limit": 256, "default_max_tokens": args_ns.max_tokens, "torch_threads": 1},
        "batching": {"max_batch_size": 16, "batch_wait_timeout_s": 0.01},
        "retrieval": {"deploy": False, "enabled": False},
        "phi_guard": {"output": "redact", "detector": "rules"},  # the guard stays on the path; its cost is not studied here
        "auth": {"keys_env": None, "keys": [
            {"id": "bench", "sha256": hash_key(KEY), "requests_per_minute": None},
            {"id": "rated", "sha256": hash_key(RATED_KEY), "requests_per_minute": args_ns.rate, "burst": args_ns.burst},
            {"id": "warm", "sha256": hash_key(WARM_KEY), "requests_per_minute": 1_000_000}]},
        "retries": {"max_attempts": args_ns.max_attempts, "deadline_s": 120},
        "deployments": {
            "gateway": {"num_replicas": args_ns.gateways, "num_cpus": 0.2, "max_ongoing_requests": 256,
                        "max_queued_requests": 512},
            "generator": {"num_replicas": 2, "num_cpus": 0.5, "max_ongoing_requests": 16,
                          "max_queued_requests": args_ns.queue, "backpressure": {"status_code": 503, "retry_after_s": 1}},
            "coordinator": {"num_cpus": 0.05}},
    })
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    serve.start(http_options={"host": "127.0.0.1", "port": port})
    serve.run(build_app(args), name=APP, route_prefix="/", blocking=False)
    url = f"http://127.0.0.1:{port}"
    deadline = time.time() + 600
    while time.time() < deadline:
        try:
            if httpx.get(f"{url}/ready", timeout=30).status_code == 200:
                return url, args
        except httpx.HTTPError:
            pass
        time.sleep(1)
    raise SystemExit("the application did not become ready in 600 s")


def replica_pids(deployment: str | None = None) -> dict[int, str]:
    """pid -> deployment of this benchmark's replica processes (found by their process title)."""
    import psutil

    out = {}
    for p in psutil.process_iter(["pid", "cmdline"]):
        cmd = " ".join(p.info["cmdline"] or [])
        marker = f"ServeReplica:{APP}:"
        if marker in cmd:
            name = cmd.split(marker, 1)[1].split()[0].split(".")[0]  # the title may name the task running
            if deployment is None or name == deployment:
                out[p.info["pid"]] = name
    return out


def running_replicas(deployment: str) -> int:
    from ray import serve

    st = serve.status().applications[APP].deployments[deployment]
    return int(st.replica_states.get("RUNNING", 0))


# -- traffic --------------------------------------------------------------------------------------
@dataclass
class Result:
    start: float
    end: float
    ok: bool
    status: str  # "200", an HTTP status, or an exception type
    retrying: bool = False


@dataclass
class Traffic:
    url: str
    clients: int
    max_tokens: int
    retrying_clients: int = 0  # of ``clients``, how many use the openai client's retries + Idempotency-Key
    results: list[Result] = field(default_factory=list)
    stop: threading.Event = field(default_factory=threading.Event)

    async def _client(self, i: int, retrying: bool) -> None:
        import openai

        c = openai.AsyncOpenAI(base_url=f"{self.url}/v1", api_key=KEY, max_retries=2 if retrying else 0, timeout=300)
        n = 0
        while not self.stop.is_set():
            n += 1
            headers = {"Idempotency-Key": f"c{i}-{n}-{uuid.uuid4().hex[:8]}"} if retrying else None
            t0 = time.time()
            try:
                await c.chat.completions.create(model="base", messages=[{"role": "user", "content": PROMPTS[n % len(PROMPTS)]}],
                                                max_tokens=self.max_tokens, temperature=0, extra_headers=headers)
                self.results.append(Result(t0, time.time(), True, "200", retrying))
            except openai.APIStatusError as err:
                self.results.append(Result(t0, time.time(), False, str(err.status_code), retrying))
            except Exception as err:  # noqa: BLE001 - connection errors, timeouts
                self.results.append(Result(t0, time.time(), False, type(err).__name__, retrying))
        await c.close()

    def run_in_background(self) -> threading.Thread:
        async def main():
            await asyncio.gather(*(self._client(i, i < self.retrying_clients) for i in range(self.clients)))

        t = threading.Thread(target=lambda: asyncio.run(main()), daemon=True)
        t.start()
        return t


def window(results: list[Result], t0: float, t1: float, retrying: bool | None = None) -> dict:
    """Requests that ended in [t0, t1) (so one in flight at a kill counts after it): count, success rate,
    p50/p99 latency of the successful ones, throughput."""
    rs = [r for r in results if t0 <= r.end < t1 and (retrying is None or r.retrying == retrying)]
    ok = [r.end - r.start for r in rs if r.ok]
    fails: dict[str, int] = {}
    for r in rs:
        if not r.ok:
            fails[r.status] = fails.get(r.status, 0) + 1
    return {"requests": len(rs), "succeeded": len(ok), "success_rate": round(len(ok) / len(rs), 4) if rs else None,
            "failures": fails, "p50_s": pct(ok, 50), "p99_s": pct(ok, 99), "seconds": round(t1 - t0, 1),
            "completed_per_s": round(sum(1 for r in results if r.ok and t0 <= r.end < t1) / max(t1 - t0, 1e-9), 2)}


def recovery_s(results: list[Result], before_rate: float, since: float, until: float, step: float = 1.0,
               width: float = 5.0) -> float | None:
    """Seconds after ``since`` until a ``width``-second window completes >= 90 % of ``before_rate``."""
    t = since
    while t + width <= until:
        done = sum(1 for r in results if r.ok and t <= r.end < t + width)
        if done / width >= 0.9 * before_rate:
            return round(t + width - since, 1)
        t += step
    return None


def fault_phase(name: str, url: str, deployment: str, a, retrying_clients: int = 0) -> dict:
    traffic = Traffic(url, a.clients, a.max_tokens, retrying_clients)
    thread = traffic.run_in_background()
    log(f"{name}: warm-up {a.warmup_s:.0f} s")
    time.sleep(a.warmup_s)
    t_before = time.time()
    load_before = load()
    time.sleep(a.phase_s)
    pids = replica_pids(deployment)
    victim = sorted(pids)[0]
    replicas = running_replicas(deployment)
    t_kill = time.time()
    os.kill(victim, signal.SIGKILL)
    log(f"{name}: SIGKILLed {deployment} replica pid {victim} ({replicas} running)")
    t_restart = None
    gone = False
    while time.time() - t_kill < 600:
        n = running_replicas(deployment)
        gone = gone or n < replicas
        if gone and n >= replicas and victim not in replica_pids(deployment):
            t_restart = time.time()
            break
        time.sleep(0.25)
    if t_restart is None:
        raise SystemExit(f"{name}: the killed replica did not come back in 600 s")
    log(f"{name}: replacement running after {t_restart - t_kill:.1f} s")
    time.sleep(a.phase_s)
    t_end = time.time()
    traffic.stop.set()
    thread.join(600)
    res = traffic.results
    before = window(res, t_before, t_kill)
    out = {"load_before": load_before, "load_after": load(), "killed": deployment,
           "replica_restart_s": round(t_restart - t_kill, 1),
           "before": before, "during": window(res, t_kill, t_restart), "after": window(res, t_restart, t_end),
           "fault_window_30s": window(res, t_kill, t_restart + 30), "whole": window(res, t_before, t_end),
           "recovery_after_restart_s": recovery_s(res, before["completed_per_s"], t_restart, t_end),
           "recovery_after_kill_s": recovery_s(res, before["completed_per_s"], t_kill, t_end)}
    if retrying_clients:
        out["by_client"] = {
            "no_client_retries": {"fault_window_30s": window(res, t_kill, t_restart + 30, False), "whole": window(res, t_before, t_end, False)},
            "openai_retries_with_idempotency_key": {"fault_window_30s": window(res, t_kill, t_restart + 30, True),
                                                    "whole": window(res, t_before, t_end, True)}}
    return out


def overload_phase(url: str, a) -> dict:
    """Sustained overload: ``--overload-clients`` clients for ``--overload-s``, each sending its next request
    when the last returns (after the ``retry-after-ms`` it was told, as OpenAI's clients wait). How fast and
    with what a request that cannot be served is answered, against two floors measured at the same time."""
    import httpx

    load_before = load()
    results: list[tuple[float, int, float, str | None, str | None]] = []  # (start, status, seconds, headers)
    stop = time.time() + a.overload_s

    async def client(http, i):
        while time.time() < stop:
            t, t0 = time.time(), time.perf_counter()
            r = await http.post(f"{url}/v1/chat/completions", headers={"authorization": f"Bearer {KEY}"},
                                json={"model": "base", "messages": [{"role": "user", "content": PROMPTS[i % 4]}],
                                      "max_tokens": 64, "temperature": 0})
            results.append((t, r.status_code, time.perf_counter() - t0, r.headers.get("retry-after"),
                            r.headers.get("retry-after-ms")))
            if r.status_code != 200:
                await asyncio.sleep(int(r.headers.get("retry-after-ms", "1000")) / 1000)

    health: list[float] = []
    unknown_model: list[float] = []

    async def probe(http):
        """The floors: GET /health (proxy + gateway, no body) and a POST the gateway answers before any
        generator call (404 for an unknown model: the same body and checks as a real request)."""
        body = {"model": "no-such-model", "messages": [{"role": "user", "content": PROMPTS[0]}], "max_tokens": 64}
        while time.time() < stop:
            t0 = time.perf_counter()
            await http.get(f"{url}/health")
            health.append((time.perf_counter() - t0) * 1000)
            t0 = time.perf_counter()
            await http.post(f"{url}/v1/chat/completions", headers={"authorization": f"Bearer {KEY}"}, json=body)
            unknown_model.append((time.perf_counter() - t0) * 1000)
            await asyncio.sleep(0.1)

    async def main():
        limits = httpx.Limits(max_connections=a.overload_clients + 10)
        async with httpx.AsyncClient(timeout=600, limits=limits) as http, httpx.AsyncClient(timeout=600) as solo:
            await asyncio.gather(probe(solo), *(client(http, i) for i in range(a.overload_clients)))

    t_start = time.time()
    asyncio.run(main())
    steady = [r for r in results if r[0] >= t_start + 5]  # after the first burst of connections
    rejected = [r for r in steady if r[1] != 200]
    burst = [r for r in results if r[0] < t_start + 5 and r[1] != 200]
    return {"load_before": load_before, "load_after": load(), "clients": a.overload_clients, "seconds": a.overload_s,
            "requests": len(results), "answered_200": sum(1 for r in results if r[1] == 200),
            "rejected": {str(s): sum(1 for r in results if r[1] == s) for s in sorted({r[1] for r in results} - {200})},
            "rejection_latency_ms": {"p50": pct([r[2] * 1000 for r in rejected], 50),
                                     "p99": pct([r[2] * 1000 for r in rejected], 99),
                                     "under_100ms": round(sum(r[2] < 0.1 for r in rejected) / len(rejected), 4) if rejected else None,
                                     "count": len(rejected)},
            "first_5s_rejection_latency_ms": {"p50": pct([r[2] * 1000 for r in burst], 50), "count": len(burst)},
            "retry_after_headers": sorted({f"{r[3]}s/{r[4]}ms" for r in results if r[1] != 200}),
            "floor_health_ms": {"p50": pct(health, 50), "p99": pct(health, 99), "probes": len(health)},
            "floor_post_404_ms": {"p50": pct(unknown_model, 50), "p99": pct(unknown_model, 99)},
            "served_latency_s": {"p50": pct([r[2] for r in steady if r[1] == 200], 50)}}


def rate_limit_phase(url: str, workdir: Path, a) -> dict:
    """A limited key hammered by 16 clients through both gateways; judged on the gateways' clock (audit times)."""
    import httpx
    from datetime import datetime, timezone

    load_before = load()
    stamps: list[tuple[float, int]] = []

    async def hammer(http, key, until, keep):
        while time.time() < until:
            t = time.time()
            r = await http.get(f"{url}/v1/models", headers={"authorization": f"Bearer {key}"})
            if keep:
                stamps.append((t, r.status_code))

    async def main():
        async with httpx.AsyncClient(timeout=60) as http:
            warm = time.time() + 3  # every gateway's first calls to the coordinator are slow: not in the window
            await asyncio.gather(*(hammer(http, WARM_KEY, warm, False) for _ in range(16)))
            until = time.time() + a.rate_s
            await asyncio.gather(*(hammer(http, RATED_KEY, until, True) for _ in range(16)))

    t_phase = time.time()
    asyncio.run(main())

    def server_time(rec):
        return datetime.strptime(rec["time"], "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=timezone.utc).timestamp()

    recs = [r for r in map(json.loads, (workdir / "audit" / "audit.jsonl").read_text().splitlines())
            if r["key_id"] == "rated" and r["endpoint"] == "models" and server_time(r) >= t_phase - 1]
    times = [server_time(r) for r in recs]
    ok = sum(1 for r in recs if r["status"] == 200)
    span = max(times) - min(times)
    rate = (ok - a.burst) / span * 60  # the burst is spent at once, then the sustained rate
    return {"load_before": load_before, "load_after": load(), "configured_per_minute": a.rate, "burst": a.burst,
            "gateways": a.gateways, "gateways_seen": len({r["gateway"] for r in recs}), "seconds": round(span, 1),
            "sent": len(stamps), "accepted": ok, "rejected_429": sum(1 for r in recs if r["status"] == 429),
            "accepted_per_minute": round(rate, 1), "ratio_to_configured": round(rate / a.rate, 4)}


def soak_phase(url: str, a) -> dict:
    import numpy as np
    import psutil

    traffic = Traffic(url, a.clients, a.max_tokens)
    thread = traffic.run_in_background()
    load_before = load()
    samples: dict[int, list[tuple[float, float]]] = {}
    names: dict[int, str] = {}
    t0 = time.time()
    end = t0 + a.soak_minutes * 60
    while time.time() < end:
        for pid, name in replica_pids().items():
            try:
                rss = psutil.Process(pid).memory_info().rss / 2**20
            except psutil.Error:
                continue
            names[pid] = name
            samples.setdefault(pid, []).append((time.time() - t0, rss))
        time.sleep(10)
    traffic.stop.set()
    thread.join(600)
    out = {}
    for pid, pts in samples.items():
        pts = [p for p in pts if p[0] >= 0.2 * a.soak_minutes * 60]  # after warm-up (caches, allocator)
        if len(pts) < 3:
            continue
        x, y = np.array([p[0] / 60 for p in pts]), np.array([p[1] for p in pts])
        slope = float(np.polyfit(x, y, 1)[0])
        out[f"{names[pid]}:{pid}"] = {"rss_mb_start": round(float(y[0]), 1), "rss_mb_end": round(float(y[-1]), 1),
                                      "slope_mb_per_min": round(slope, 3),
                                      "slope_pct_per_hour": round(100 * slope * 60 / float(y.mean()), 2)}
    w = window(traffic.results, t0, end)
    return {"load_before": load_before, "load_after": load(), "minutes": a.soak_minutes, "traffic": w, "processes": out}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--clients", type=int, default=32)
    ap.add_argument("--max-tokens", type=int, default=8)
    ap.add_argument("--phase-s", type=float, default=60, help="steady traffic before a kill, and after the restart")
    ap.add_argument("--warmup-s", type=float, default=15)
    ap.add_argument("--gateways", type=int, default=2)
    ap.add_argument("--max-attempts", type=int, default=3, help="retries.max_attempts (1: no retries, the baseline)")
    ap.add_argument("--queue", type=int, default=32, help="generator max_queued_requests (per gateway)")
    ap.add_argument("--overload-clients", type=int, default=200)
    ap.add_argument("--overload-s", type=float, default=30)
    ap.add_argument("--rate", type=int, default=600, help="requests/minute of the rate-limited key")
    ap.add_argument("--rate-s", type=float, default=30)
    ap.add_argument("--burst", type=int, default=10, help="bucket size of the rate-limited key")
    ap.add_argument("--soak-minutes", type=float, default=10)
    ap.add_argument("--skip", nargs="*", default=[], choices=["generator_kill", "gateway_kill", "overload", "rate_limit", "soak"])
    ap.add_argument("--workdir", default="work/bench/chaos")
    a = ap.parse_args()
    workdir = Path(a.workdir).resolve()
    workdir.mkdir(parents=True, exist_ok=True)
    out: dict = {"date": date.today().isoformat(), "machine": f"{platform.machine()}, {os.cpu_count()} CPUs",
                 "load_average_at_start": load(), "clients": a.clients, "max_tokens": a.max_tokens,
                 "gateways": a.gateways, "generators": 2, "max_attempts": a.max_attempts}
    t0 = time.time()
    url, _ = start_app(workdir, a)
    out["startup_s"] = round(time.time() - t0, 1)
    log(f"app ready at {url} after {out['startup_s']} s")
    try:
        if "generator_kill" not in a.skip:
            out["generator_kill"] = fault_phase("generator_kill", url, "Generator", a)
            log(json.dumps(out["generator_kill"]["fault_window_30s"]))
        if "gateway_kill" not in a.skip:
            out["gateway_kill"] = fault_phase("gateway_kill", url, "Gateway", a, retrying_clients=a.clients // 2)
            log(json.dumps(out["gateway_kill"]["by_client"]))
        if "overload" not in a.skip:
            out["overload"] = overload_phase(url, a)
            log(json.dumps(out["overload"]))
        if "rate_limit" not in a.skip:
            out["rate_limit"] = rate_limit_phase(url, workdir, a)
            log(json.dumps(out["rate_limit"]))
        if "soak" not in a.skip:
            out["soak"] = soak_phase(url, a)
            log(json.dumps(out["soak"]["processes"]))
    finally:
        from ray import serve
        import ray

        serve.shutdown()
        ray.shutdown()
    out["load_average_at_end"] = load()
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
