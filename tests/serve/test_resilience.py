"""Faults and load over real HTTP (official ``openai`` client, tiny model): a generator replica
SIGKILLed under a request (retried once and answered) and under a stream (an error event, never a
hang), Idempotency-Key (first answer, 409 while running, 422 for another body), rate limits held
across two gateway replicas, and a full queue answered at once with a retryable status.

One application with two gateway replicas, one generator replica (so a request's replica is known
and a kill forces the retry onto the restarted one) and a small generator queue.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from types import SimpleNamespace

import httpx
import openai
import pytest

from clinitune.serve.auth import RateLimiter, hash_key

pytestmark = pytest.mark.ray

KEYS = {"main": "ct-resilience-main", "rated": "ct-resilience-rated", "warm": "ct-resilience-warm"}
RATE_PER_MINUTE = 600  # 10 per second, across both gateways
BURST = 10  # a second's worth: the coordinator may stall that long on a loaded machine without losing refills
LONG = 900  # tokens: long enough to be killed in the middle of


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_ready(url: str, timeout: float = 240) -> None:
    deadline = time.time() + timeout
    while True:
        try:
            if httpx.get(f"{url}/ready", timeout=10).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        if time.time() > deadline:
            pytest.fail(f"the Serve app did not become ready in {timeout:.0f} s")
        time.sleep(0.5)


@pytest.fixture(scope="module")
def app(ray_session, tiny_model, tmp_path_factory):
    from ray import serve

    from clinitune.serve.app import build_app
    from clinitune.serve.config import ServeArgs

    work = tmp_path_factory.mktemp("resilience-work")
    args = ServeArgs.model_validate({
        "workdir": str(work),
        "model": {"base": str(tiny_model), "max_tokens_limit": 1000, "default_max_tokens": 16},
        "batching": {"max_batch_size": 4, "batch_wait_timeout_s": 0.01},
        "retrieval": {"deploy": False, "enabled": False},
        "phi_guard": {"output": "off"},
        "auth": {"keys_env": None, "keys": [
            {"id": "main", "sha256": hash_key(KEYS["main"]), "requests_per_minute": None},
            {"id": "rated", "sha256": hash_key(KEYS["rated"]), "requests_per_minute": RATE_PER_MINUTE, "burst": BURST},
            {"id": "warm", "sha256": hash_key(KEYS["warm"]), "requests_per_minute": 100_000}]},
        "retries": {"max_attempts": 2, "backoff_initial_s": 0.05, "deadline_s": 180, "stream_idle_timeout_s": 60},
        "deployments": {
            "gateway": {"num_replicas": 2, "num_cpus": 0.1},
            "generator": {"num_cpus": 0.5, "max_ongoing_requests": 4, "max_queued_requests": 2,
                          "backpressure": {"status_code": 503, "retry_after_s": 0.5}, "max_surge_percent": 100},
            "coordinator": {"num_cpus": 0.05}},
    })
    port = _free_port()
    serve.start(http_options={"host": "127.0.0.1", "port": port})
    serve.run(build_app(args), name="resilience", route_prefix="/", blocking=False)
    url = f"http://127.0.0.1:{port}"
    _wait_ready(url)
    generator = serve.get_deployment_handle("Generator", app_name="resilience")
    yield SimpleNamespace(url=url, args=args, generator=generator, audit=work / "audit" / "audit.jsonl", build_app=build_app)
    serve.delete("resilience")
    serve.shutdown()


def client(app, key: str = "main", **kw) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{app.url}/v1", api_key=KEYS[key], max_retries=0, timeout=kw.pop("timeout", 240), **kw)


def ask(app, content: str = "hello", max_tokens: int = 8, idem: str | None = None, temperature: float = 0, **kw):
    headers = {"Idempotency-Key": idem} if idem else None
    return client(app).chat.completions.create(model="base", messages=[{"role": "user", "content": content}],
                                               temperature=temperature, max_tokens=max_tokens, extra_headers=headers, **kw)


def audit(app, request_id: str) -> dict:
    for line in app.audit.read_text().splitlines():
        rec = json.loads(line)
        if rec["request_id"] == request_id:
            return rec
    raise AssertionError(f"no audit record for {request_id}")


def info(app) -> dict:
    return app.generator.info.remote().result(timeout_s=120)


def wait_running(app, timeout: float = 60) -> dict:
    """The generator's info once a request is decoding on it."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        got = info(app)
        if got["running"] >= 1:
            return got
        time.sleep(0.05)
    raise AssertionError("no request started decoding")


@pytest.fixture(scope="module")
def long_prompt(app):
    """A prompt the random base model answers with exactly LONG tokens (never an early end), and that answer."""
    for i in range(8):
        content = f"tell me a long story {i}"
        r = ask(app, content, max_tokens=LONG)
        if r.choices[0].finish_reason == "length" and r.usage.completion_tokens == LONG:
            return SimpleNamespace(content=content, text=r.choices[0].message.content)
    pytest.fail("no prompt made the tiny model decode to the length limit")


# -- Idempotency-Key ---------------------------------------------------------------------------
def test_idempotency_key_returns_the_first_answer(app):
    first = ask(app, "hello", max_tokens=12, idem="order-1", temperature=1.0)  # sampled: a second run would differ
    again = client(app).chat.completions.with_raw_response.create(
        model="base", messages=[{"role": "user", "content": "hello"}], temperature=1.0, max_tokens=12,
        extra_headers={"Idempotency-Key": "order-1"})
    assert again.headers["idempotent-replayed"] == "true"
    second = again.parse()
    assert second.id == first.id and second.choices[0].message.content == first.choices[0].message.content
    assert audit(app, first.id)["idempotency"] == "new"
    replays = [json.loads(x) for x in app.audit.read_text().splitlines() if '"idempotency":"replayed"' in x]
    assert replays and replays[-1]["attempts"] == 0 and replays[-1]["status"] == 200  # no second generation
    with pytest.raises(openai.UnprocessableEntityError) as err:  # the same key for another request
        ask(app, "a different question", max_tokens=12, idem="order-1", temperature=1.0)
    assert err.value.status_code == 422 and err.value.body["code"] == "idempotency_key_reused"
    other_key = openai.OpenAI(base_url=f"{app.url}/v1", api_key=KEYS["rated"], max_retries=0)
    r = other_key.chat.completions.create(model="base", messages=[{"role": "user", "content": "hello"}], temperature=1.0,
                                          max_tokens=12, extra_headers={"Idempotency-Key": "order-1"})
    assert r.id != first.id  # keys are per API key: another client's key never replays this answer


def test_idempotency_key_in_use_is_409_then_the_answer(app, long_prompt):
    with ThreadPoolExecutor(1) as pool:
        running = pool.submit(ask, app, long_prompt.content, LONG, "order-2")
        wait_running(app)
        with pytest.raises(openai.ConflictError) as err:
            ask(app, long_prompt.content, LONG, "order-2")
        assert err.value.body["code"] == "idempotency_key_in_use" and err.value.response.headers["retry-after"]
        first = running.result(timeout=240)
    assert ask(app, long_prompt.content, LONG, "order-2").id == first.id


def test_a_streamed_answer_is_replayed_too(app):
    def stream():
        chunks = list(client(app).chat.completions.create(
            model="base", messages=[{"role": "user", "content": "stream me"}], temperature=1.0, max_tokens=10,
            stream=True, extra_headers={"Idempotency-Key": "stream-1"}))
        return chunks[0].id, "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)

    assert stream() == stream()


# -- limits across gateway replicas ------------------------------------------------------------
def _audit_time(rec: dict) -> float:
    from datetime import datetime, timezone

    return datetime.strptime(rec["time"], "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=timezone.utc).timestamp()


def _hammer(app, key: str, seconds: float, threads: int = 8) -> list[int]:
    stop = time.time() + seconds
    statuses: list[int] = []

    def loop():
        with httpx.Client(timeout=30) as http:
            while time.time() < stop:
                r = http.get(f"{app.url}/v1/models", headers={"authorization": f"Bearer {KEYS[key]}"})
                statuses.append(r.status_code)
                if r.status_code == 429:
                    assert int(r.headers["retry-after-ms"]) >= 1 and r.json()["error"]["code"] == "rate_limit_exceeded"

    workers = [threading.Thread(target=loop) for _ in range(threads)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    return statuses


def _one_bucket(arrivals: list[float], per_minute: int, burst: int) -> int:
    """How many of these arrivals one token bucket admits: the coordinator's own RateLimiter, on a
    clock that reads the arrivals (the limit both gateways must share, replayed in one process)."""
    now = [arrivals[0]]
    bucket = RateLimiter(clock=lambda: now[0])
    admitted = 0
    for t in arrivals:
        now[0] = t
        admitted += bucket.check("k", per_minute, burst) == 0
    return admitted


def test_rate_limit_holds_across_two_gateway_replicas(app):
    """600/minute with a burst of 10, hammered through both gateways for 8 s: ~90 pass, not ~2x that.

    Judged on the gateways' own clock: the audit log gives each request's arrival (its time less its
    latency), and one token bucket fed those arrivals says how many one shared limit admits. A
    stall on a loaded machine (no request reaching the limiter for a while) loses refills at the
    bucket's cap in both, so it neither hides a doubled limit nor fails a correct one."""
    _hammer(app, "warm", 1.0)  # both gateways' first calls to the coordinator are slow; not part of the window
    statuses = _hammer(app, "rated", 8.0)
    ok = statuses.count(200)
    # 1.5x the allowed is enough to make the limiter turn a third away; 3x failed on a loaded CI box
    # (the clients, not the limiter, were the bottleneck) without saying anything about the limit
    assert len(statuses) > 1.5 * ok, "the clients did not saturate the limit; the check would mean nothing"
    recs = [r for r in map(json.loads, app.audit.read_text().splitlines()) if r["key_id"] == "rated" and r["endpoint"] == "models"]
    assert len(recs) == len(statuses) and sum(r["status"] == 200 for r in recs) == ok
    arrivals = sorted(_audit_time(r) - r["latency_ms"] / 1000 for r in recs)
    expected = _one_bucket(arrivals, RATE_PER_MINUTE, BURST)
    assert abs(ok - expected) <= max(3, 0.05 * expected), (ok, expected)
    assert len({r["gateway"] for r in recs}) == 2  # both gateway replicas took requests, and together kept one limit


def test_a_full_queue_is_answered_at_once_with_a_retryable_status(app):
    """4 decoding slots + 2 queued per gateway: of 24 concurrent long requests most are turned away fast."""
    def one(i):
        t0 = time.perf_counter()
        r = httpx.post(f"{app.url}/v1/chat/completions", timeout=240,
                       headers={"authorization": f"Bearer {KEYS['main']}"},
                       json={"model": "base", "messages": [{"role": "user", "content": f"tell me a long story {i}"}],
                             "max_tokens": 400, "temperature": 0})
        return r, time.perf_counter() - t0

    with ThreadPoolExecutor(24) as pool:
        results = list(pool.map(one, range(24)))
    rejected = [(r, dt) for r, dt in results if r.status_code != 200]
    assert 0 < len(rejected) < 24 and {r.status_code for r, _ in rejected} == {503}
    for r, dt in rejected:
        assert r.json()["error"]["code"] == "server_overloaded"
        assert r.headers["retry-after"] == "1" and r.headers["retry-after-ms"] == "500"
    assert min(dt for _, dt in rejected) < min(dt for r, dt in results if r.status_code == 200)
    metrics = ""  # either gateway answers /metrics, and only the one that turned requests away counts them
    for _ in range(40):
        metrics += httpx.get(f"{app.url}/metrics").text
        if 'reason="queue_full"' in metrics:
            break
    assert 'clinitune_rejections_total{reason="queue_full"}' in metrics
    assert "clinitune_generator_inflight" in metrics
    q = info(app)
    assert q["queued"] == 0 and q["running"] == 0  # the replica's own queue gauges are back to empty


# -- a replica killed under a request ----------------------------------------------------------
def _kill_generator_while_running(app) -> int:
    pid = wait_running(app)["pid"]
    os.kill(pid, signal.SIGKILL)
    return pid


def _wait_generator_back(app, old_pid: int, timeout: float = 240) -> None:
    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            if info(app)["pid"] != old_pid:
                return
        except Exception:  # noqa: BLE001 - still restarting
            time.sleep(0.5)
    raise AssertionError("the generator replica did not come back")


def test_a_request_whose_replica_is_killed_is_retried_once_and_answered(app, long_prompt):
    with ThreadPoolExecutor(1) as pool:
        pending = pool.submit(ask, app, long_prompt.content, LONG)
        old = _kill_generator_while_running(app)
        r = pending.result(timeout=300)
    assert r.choices[0].message.content == long_prompt.text  # the whole answer, generated again on the new replica
    rec = audit(app, r.id)
    assert rec["status"] == 200 and rec["attempts"] == 2
    assert info(app)["pid"] != old
    metrics = "".join(httpx.get(f"{app.url}/metrics").text for _ in range(6))
    assert 'clinitune_retries_total{endpoint="chat",reason="died"}' in metrics


def test_a_stream_that_loses_its_replica_ends_with_an_error_event(app, long_prompt):
    _wait_generator_back(app, -1)
    outcome: dict = {}

    def consume():
        text = []
        try:
            for c in client(app).chat.completions.create(
                    model="base", messages=[{"role": "user", "content": long_prompt.content}], temperature=0,
                    max_tokens=LONG, stream=True):
                if c.choices and c.choices[0].delta.content:
                    text.append(c.choices[0].delta.content)
                    outcome["started"] = True
                outcome["id"] = c.id
        except openai.APIError as err:
            outcome["error"] = err
        outcome["text"] = "".join(text)

    reader = threading.Thread(target=consume)
    reader.start()
    deadline = time.time() + 60
    while "started" not in outcome and time.time() < deadline:
        time.sleep(0.02)
    assert outcome.get("started"), "the stream did not start"
    old = _kill_generator_while_running(app)
    reader.join(timeout=120)
    assert not reader.is_alive(), "the stream hung after its replica died"
    err = outcome.get("error")
    assert err is not None and "replica serving this stream was lost" in err.message
    assert err.body["code"] == "stream_interrupted"
    assert 0 < len(outcome["text"]) < len(long_prompt.text)
    rec = audit(app, outcome["id"])
    assert rec["status"] == 503 and rec["error_code"] == "stream_interrupted"
    _wait_generator_back(app, old)


@pytest.mark.slow
def test_retries_exhausted_is_a_503_with_retry_after_and_the_attempts_are_audited(app, long_prompt):
    _wait_generator_back(app, -1)
    with ThreadPoolExecutor(1) as pool:
        pending = pool.submit(lambda: httpx.post(
            f"{app.url}/v1/chat/completions", timeout=300, headers={"authorization": f"Bearer {KEYS['main']}"},
            json={"model": "base", "messages": [{"role": "user", "content": long_prompt.content}], "max_tokens": LONG,
                  "temperature": 0}))
        first = _kill_generator_while_running(app)
        _wait_generator_back(app, first)
        _kill_generator_while_running(app)  # the retry (max_attempts 2) loses its replica too
        r = pending.result(timeout=300)
    assert r.status_code == 503 and r.json()["error"]["code"] == "retries_exhausted"
    assert int(r.headers["retry-after"]) >= 1 and r.headers["retry-after-ms"]
    rec = audit(app, r.headers["x-request-id"].split(",")[0])  # Serve's proxy appends its own id
    assert rec["attempts"] == 2 and rec["status"] == 503 and rec["error_code"] == "retries_exhausted"


@pytest.mark.slow
def test_a_rolling_update_of_the_config_loses_no_request(app):
    """Redeploy with a changed config under steady traffic: every replica is replaced, every request answered."""
    from ray import serve

    _wait_generator_back(app, -1)
    results, stop = [], threading.Event()

    def traffic():
        with httpx.Client(timeout=300) as http:
            while not stop.is_set():
                r = http.post(f"{app.url}/v1/chat/completions", headers={"authorization": f"Bearer {KEYS['main']}"},
                              json={"model": "base", "messages": [{"role": "user", "content": "hello"}], "max_tokens": 24})
                results.append(r.status_code if r.status_code == 200 else (r.status_code, r.text[:300]))

    # two clients: never more than one request waiting besides their own, so the fixture's tiny queue (2 per
    # gateway, there for the full-queue test) cannot turn one away while the routers learn the new replicas
    workers = [threading.Thread(target=traffic) for _ in range(2)]
    for w in workers:
        w.start()
    try:
        time.sleep(2)
        old = info(app)["pid"]
        changed = app.args.model_copy(update={"model": app.args.model.model_copy(update={"default_max_tokens": 20})})
        serve.run(app.build_app(changed), name="resilience", route_prefix="/", blocking=False)
        _wait_generator_back(app, old, timeout=300)
        time.sleep(3)
    finally:
        stop.set()
        for w in workers:
            w.join(300)
    failed = [r for r in results if r != 200]
    assert len(results) > 10 and not failed, failed
