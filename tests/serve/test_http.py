"""Real HTTP against a local Serve app (tiny model, two LoRA adapters, a tiny knowledge base) with the
official ``openai`` client: chat, completions, streaming, adapter routing, hot reload after a
promotion, citations, auth/rate/size failures, bad input, the PHI guard and the audit log.
"""

from __future__ import annotations

import json
import socket
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from types import SimpleNamespace

import httpx
import yaml
import openai
import pytest

from clinitune.serve.auth import hash_key

pytestmark = pytest.mark.ray

KEYS = {"main": "ct-main-key", "restricted": "ct-restricted-key", "limited": "ct-limited-key"}
PHI_PROMPT = "Patient John Smith, MRN 7654321, seen at Boston General on 03/14/2024. What is the code?"
PHI_VALUES = ("John Smith", "7654321", "Boston General", "03/14/2024")
KB_DOCS = [
    {"id": "E11.9", "title": "ICD-10-CM E11.9", "text": "E11.9 Type 2 diabetes mellitus without complications"},
    {"id": "I10", "title": "ICD-10-CM I10", "text": "I10 Essential (primary) hypertension"},
    {"id": "J45.909", "title": "ICD-10-CM J45.909", "text": "J45.909 Unspecified asthma, uncomplicated"},
]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _point_production(pointer: Path, version: str, artifact: Path) -> None:
    """What the registry writes on promote/rollback (atomic replace)."""
    tmp = pointer.with_name(".production.json.tmp")
    tmp.write_text(json.dumps({"model_name": "clinitune-icd10", "version": version, "alias": "production",
                               "artifact_path": str(artifact), "event": "promote"}))
    tmp.replace(pointer)


@pytest.fixture(scope="module")
def app(ray_session, tiny_model, adapters, tmp_path_factory):
    from ray import serve

    from clinitune.rag import Embedder, KbStore, ingest_kb
    from clinitune.serve.app import build_app
    from clinitune.serve.config import ServeArgs

    work = tmp_path_factory.mktemp("serve-work")
    src = work / "icd.jsonl"
    src.write_text("\n".join(json.dumps(d) for d in KB_DOCS) + "\n")
    embedder = Embedder()
    ingest_kb(KbStore(work / "kb"), "icd10", [src], embedder=embedder)
    pointer = work / "registry" / "production.json"
    pointer.parent.mkdir(parents=True)
    _point_production(pointer, "1", adapters["coder"])
    args = ServeArgs.model_validate({
        "workdir": str(work),
        "model": {"base": str(tiny_model), "max_tokens_limit": 200, "default_max_tokens": 48},
        "adapters": {"static": {"coder": str(adapters["coder"]), "leaky": str(adapters["leaky"])},
                     "registry": {"pointer_file": str(pointer)}, "refresh_s": 0.25, "max_loaded_per_replica": 2},
        "batching": {"max_batch_size": 8, "batch_wait_timeout_s": 0.02},
        "retrieval": {"enabled": False, "top_k": 2, "max_top_k": 5},  # the tiny adapters only know bare prompts
        # The random-init tiny model emits token soup on which the learned tagger fires (a redacted
        # answer carries no logprobs); the ensemble guard is tested in tests/phi/test_shipped.py.
        "phi_guard": {"output": "redact", "prompt": "off", "detector": "rules"},
        "auth": {"keys_env": None, "keys": [
            {"id": "main", "sha256": hash_key(KEYS["main"]), "requests_per_minute": None},
            {"id": "restricted", "sha256": hash_key(KEYS["restricted"]), "models": ["clinitune", "coder"]},
            {"id": "limited", "sha256": hash_key(KEYS["limited"]), "requests_per_minute": 2}]},
        "limits": {"max_body_bytes": 4096},
        "deployments": {"gateway": {"num_cpus": 0.1}, "generator": {"num_cpus": 0.5, "max_ongoing_requests": 16},
                        "retriever": {"num_cpus": 0.1}},
    })
    port = _free_port()
    serve.start(http_options={"host": "127.0.0.1", "port": port})
    serve.run(build_app(args), name="clinitune", route_prefix="/", blocking=False)
    url = f"http://127.0.0.1:{port}"
    deadline = time.time() + 240
    while True:
        try:
            if httpx.get(f"{url}/ready", timeout=10).status_code == 200:
                break
        except httpx.HTTPError:
            pass
        if time.time() > deadline:
            pytest.fail("the Serve app did not become ready in 240 s")
        time.sleep(0.5)
    yield SimpleNamespace(url=url, work=work, pointer=pointer, adapters=adapters, embedder=embedder,
                          audit=work / "audit" / "audit.jsonl")
    serve.shutdown()


def client(app, key: str = "main") -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{app.url}/v1", api_key=KEYS.get(key, key), max_retries=0, timeout=60)


def ask(app, model: str, content: str = "what is the code?", **kw):
    return client(app).chat.completions.create(model=model, messages=[{"role": "user", "content": content}],
                                               temperature=0, max_tokens=40, **kw)


def test_models_lists_production_base_and_adapters(app):
    ids = {m.id for m in client(app).models.list().data}
    assert {"clinitune", "base", "coder", "leaky"} <= ids
    restricted = {m.id for m in client(app, "restricted").models.list().data}
    assert restricted == {"clinitune", "coder"}


RAG = {"retrieval": {"enabled": True}}


def test_chat_defaults_to_production(app, adapter_texts):
    r = ask(app, "clinitune", "patient with type 2 diabetes, which code?")
    assert r.object == "chat.completion" and r.model == "clinitune"
    assert r.choices[0].message.content.startswith(adapter_texts["coder"][:20])
    assert r.adapter == {"name": "clinitune-icd10", "version": "1", "fingerprint": "clinitune-icd10@1"}
    assert r.system_fingerprint == "clinitune-icd10@1"
    assert r.usage.completion_tokens > 0 and r.choices[0].finish_reason == "stop"


def test_answers_carry_citations(app):
    plain = ask(app, "coder", "patient with type 2 diabetes, which code?")
    r = ask(app, "coder", "patient with type 2 diabetes, which code?", extra_body=RAG)
    assert r.usage.prompt_tokens > plain.usage.prompt_tokens + 20  # the passages are in the prompt
    assert r.retrieval == {"kb": "icd10", "status": "ok", "top_k": 2}
    cites = r.citations
    assert len(cites) == 2 and cites[0]["doc_id"] == "E11.9" and cites[0]["kb"] == "icd10"
    assert cites[0]["snippet"].startswith("E11.9 Type 2 diabetes") and cites[0]["index"] == 1


def test_completions_endpoint(app):
    r = client(app).completions.create(model="coder", prompt="Diagnosis: asthma. Code:", max_tokens=8, temperature=0)
    assert r.object == "text_completion" and isinstance(r.choices[0].text, str)
    assert r.usage.completion_tokens <= 8 and r.choices[0].finish_reason in ("stop", "length")
    assert r.retrieval == {"status": "off"}  # completions retrieve only when asked


def test_streaming_chat_matches_the_whole_answer(app):
    whole = ask(app, "coder", "stream me", extra_body=RAG)
    chunks = list(client(app).chat.completions.create(
        model="coder", messages=[{"role": "user", "content": "stream me"}], temperature=0, max_tokens=40, stream=True,
        stream_options={"include_usage": True}, extra_body=RAG))
    assert chunks[0].choices[0].delta.role == "assistant" and len(chunks[0].citations) == 2
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == whole.choices[0].message.content
    assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] == whole.choices[0].finish_reason
    assert chunks[-1].usage.completion_tokens == whole.usage.completion_tokens


def test_streaming_completion(app):
    parts = list(client(app).completions.create(model="base", prompt="Hello", max_tokens=6, temperature=0, stream=True))
    assert parts[-1].choices[0].finish_reason in ("stop", "length")
    whole = client(app).completions.create(model="base", prompt="Hello", max_tokens=6, temperature=0)
    assert "".join(p.choices[0].text for p in parts) == whole.choices[0].text


def test_adapter_routing_and_lru(app, adapter_texts):
    coder = ask(app, "coder").choices[0].message.content
    leaky = ask(app, "leaky").choices[0].message.content
    base = ask(app, "base").choices[0].message.content
    assert coder.startswith(adapter_texts["coder"][:20])
    assert leaky.startswith("Patient [NAME]")  # the leaky adapter answered, and the guard redacted it
    assert base != coder and not base.startswith("Patient")
    ready = httpx.get(f"{app.url}/ready").json()
    assert ready["checks"]["generator"]["loaded_adapters"] <= 2  # LRU bound per replica


def test_concurrent_requests_are_batched_and_all_answered(app, adapter_texts):
    with ThreadPoolExecutor(8) as pool:
        answers = list(pool.map(lambda i: ask(app, "coder", "what is the code?", seed=i), range(8)))
    assert all(a.choices[0].message.content.startswith(adapter_texts["coder"][:20]) for a in answers)


def test_phi_guard_redacts_output_and_audit_log_holds_no_text(app, adapter_texts):
    r = ask(app, "leaky", PHI_PROMPT, user="clinician-7")
    text = r.choices[0].message.content
    for value in adapter_texts["leaky_values"]:
        assert value not in text
    assert "[NAME]" in text and "[MRN]" in text
    assert r.phi_guard["action"] == "redacted" and r.phi_guard["counts"]["NAME"] >= 1
    audit = app.audit.read_text()
    for secret in (*PHI_VALUES, *adapter_texts["leaky_values"], KEYS["main"], "What is the code"):
        assert secret not in audit
    rec = [json.loads(line) for line in audit.splitlines() if json.loads(line)["request_id"] == r.id][0]
    assert rec["key_id"] == "main" and rec["model"] == "leaky" and rec["adapter"] == "leaky" and rec["status"] == 200
    assert rec["prompt_tokens"] == r.usage.prompt_tokens and rec["completion_tokens"] == r.usage.completion_tokens
    assert rec["latency_ms"] > 0 and rec["phi_action"] == "output_redacted" and rec["phi_output"]["MRN"] >= 1
    assert set(rec) >= {"time", "key_id", "model", "adapter", "adapter_version", "prompt_tokens", "completion_tokens",
                        "latency_ms", "status"}


def test_streamed_phi_is_redacted_too(app, adapter_texts):
    chunks = list(client(app).chat.completions.create(
        model="leaky", messages=[{"role": "user", "content": "hi"}], temperature=0, max_tokens=40, stream=True))
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text.startswith("Patient [NAME]")
    assert not any(v in text for v in adapter_texts["leaky_values"])


def test_promotion_and_rollback_take_effect_without_restart_or_dropped_requests(app, adapter_texts):
    assert ask(app, "clinitune").adapter["version"] == "1"
    results, stop = [], threading.Event()

    def traffic():
        while not stop.is_set():
            r = ask(app, "clinitune", "keep going")
            results.append((r.adapter["version"], r.choices[0].message.content))

    workers = [threading.Thread(target=traffic) for _ in range(3)]
    for w in workers:
        w.start()
    try:
        time.sleep(1.0)
        _point_production(app.pointer, "2", app.adapters["leaky"])  # promote version 2
        deadline = time.time() + 30
        while not any(v == "2" for v, _ in results) and time.time() < deadline:
            time.sleep(0.2)
        time.sleep(0.5)
    finally:
        stop.set()
        for w in workers:
            w.join(60)
    versions = [v for v, _ in results]
    assert "1" in versions and "2" in versions
    assert versions.index("2") > 0 and "1" not in versions[versions.index("2") + 3:]  # settles on the new version
    assert all(text.startswith("Patient [NAME]") for v, text in results if v == "2")
    _point_production(app.pointer, "1", app.adapters["coder"])  # roll back
    deadline = time.time() + 30
    while ask(app, "clinitune").adapter["version"] != "1":
        assert time.time() < deadline, "rollback did not take effect"
        time.sleep(0.2)
    assert ask(app, "clinitune").choices[0].message.content.startswith(adapter_texts["coder"][:20])


def test_retrieval_off_pick_a_kb_and_ingest_while_serving(app):
    from clinitune.rag import KbStore, ingest_kb

    off = ask(app, "coder", "diabetes")  # this server's default
    assert off.retrieval == {"status": "off"} and getattr(off, "citations", None) is None
    on = ask(app, "coder", "diabetes", extra_body=RAG)
    assert on.citations and ask(app, "coder", "diabetes", extra_body={"retrieval": {"enabled": False}}).retrieval == {"status": "off"}
    with pytest.raises(openai.NotFoundError) as err:
        ask(app, "coder", "x", extra_body={"retrieval": {"kb": "policies"}})
    assert "knowledge base 'policies' does not exist" in err.value.message
    src = app.work / "policy.md"
    src.write_text("# Anticoagulation\n\nHold warfarin and give vitamin K when the INR is above 10.")
    ingest_kb(KbStore(app.work / "kb"), "policies", [src], embedder=app.embedder)  # while serving
    r = ask(app, "coder", "INR is 12 on warfarin", extra_body={"retrieval": {"kb": "policies", "top_k": 1}})
    assert r.citations[0]["kb"] == "policies" and "vitamin K" in r.citations[0]["snippet"]


def test_auth_permissions_rate_and_size_limits(app):
    with pytest.raises(openai.AuthenticationError):
        client(app, "not-a-key").models.list()
    r = httpx.post(f"{app.url}/v1/chat/completions", json={"model": "coder", "messages": [{"role": "user", "content": "x"}]})
    assert r.status_code == 401 and r.json()["error"]["code"] == "invalid_api_key"
    with pytest.raises(openai.PermissionDeniedError) as err:
        client(app, "restricted").chat.completions.create(model="leaky", messages=[{"role": "user", "content": "x"}])
    assert "may not use model 'leaky'" in err.value.message
    limited = client(app, "limited")
    limited.models.list()
    limited.models.list()
    with pytest.raises(openai.RateLimitError) as err:
        limited.models.list()
    assert err.value.response.headers.get("retry-after")
    with pytest.raises(openai.APIStatusError) as err:
        ask(app, "coder", "x" * 5000)
    assert err.value.status_code == 413 and err.value.body["code"] == "request_too_large"


@pytest.mark.parametrize("body, status, code", [
    (b"{not json", 400, "invalid_json"),
    (b"[1, 2]", 400, "invalid_json"),
    ({"model": "gpt-4", "messages": [{"role": "user", "content": "x"}]}, 404, "model_not_found"),
    ({"model": "coder", "messages": []}, 400, "invalid_value"),
    ({"model": "coder"}, 400, "missing_required_parameter"),
    ({"model": "coder", "messages": [{"role": "user", "content": "  "}]}, 400, "invalid_value"),
    ({"model": "coder", "messages": [{"role": "user", "content": "x"}], "max_tokens": 10**9}, 400, "invalid_value"),
    ({"model": "coder", "messages": [{"role": "user", "content": "x"}], "max_tokens": 0}, 400, "invalid_value"),
    ({"model": "coder", "messages": [{"role": "user", "content": "x"}], "temperature": "hot"}, 400, "invalid_value"),
    ({"model": "coder", "messages": [{"role": "user", "content": "x"}], "n": 99}, 400, "invalid_value"),
    ({"model": "coder", "messages": [{"role": "user", "content": "x"}], "tools": []}, 400, "unknown_parameter"),
    ({"model": "coder", "messages": [{"role": "wizard", "content": "x"}]}, 400, "invalid_value"),
    ({"model": "coder", "messages": [{"role": "user", "content": "x"}], "retrieval": {"kb": "nope"}}, 404, "knowledge_base_not_found"),
    ({"model": "coder", "messages": [{"role": "user", "content": "x"}], "retrieval": {"top_k": 99}}, 400, "invalid_value"),
    ({"model": "coder", "messages": [{"role": "user", "content": "x"}], "stop": ["a", "b", "c", "d", "e"]}, 400, "invalid_value"),
    ({"model": "coder", "messages": [{"role": "user", "content": "word " * 700}], "max_tokens": 200}, 400, "context_length_exceeded"),
])
def test_bad_input_is_an_openai_style_4xx(app, body, status, code):
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    r = httpx.post(f"{app.url}/v1/chat/completions", content=raw, timeout=60,
                   headers={"authorization": f"Bearer {KEYS['main']}", "content-type": "application/json"})
    assert r.status_code == status, r.text
    err = r.json()["error"]
    assert err["code"] == code and err["message"] and err["type"]
    assert "Traceback" not in r.text


def test_terminology_constraint_per_request(app, adapter_texts):
    """extra_body={"code_system": "icd10cm"}: answers may only hold ICD-10-CM codes; the response says so."""
    r = ask(app, "coder", "what is the code for diabetes", extra_body={"code_system": "icd10cm"})
    assert r.choices[0].message.content.startswith("The code is E11.9")  # a valid code passes untouched
    assert r.constraint == {"code_system": "icd10cm"}
    assert ask(app, "coder").constraint == {"code_system": None}  # the server default here: off
    bad = httpx.post(f"{app.url}/v1/chat/completions", timeout=60,
                     json={"model": "coder", "messages": [{"role": "user", "content": "x"}], "code_system": "snomed"},
                     headers={"authorization": f"Bearer {KEYS['main']}"})
    assert bad.status_code == 400 and bad.json()["error"]["param"] == "code_system"


def test_replicas_survive_bad_input_and_report_health_and_metrics(app):
    assert httpx.get(f"{app.url}/health").json() == {"status": "ok"}
    ready = httpx.get(f"{app.url}/ready").json()
    assert ready["status"] == "ready" and "icd10" in ready["checks"]["retriever"]["knowledge_bases"]
    assert ask(app, "coder").choices[0].finish_reason in ("stop", "length")  # still serving
    r = httpx.get(f"{app.url}/nowhere")
    assert r.status_code == 404 and r.json()["error"]["code"] == "unknown_url"
    metrics = httpx.get(f"{app.url}/metrics").text
    assert 'clinitune_requests_total{endpoint="chat",model="coder",status="200"}' in metrics
    assert 'clinitune_tokens_total{kind="completion",model="coder"}' in metrics
    assert 'clinitune_errors_total{code="model_not_found",model="unknown"}' in metrics
    assert "clinitune_request_latency_seconds_bucket" in metrics


# --- what evaluation clients send: logprobs, echo, token-id prompts, n, penalties, seed, response_format ---


def _post(app, path: str, body: dict) -> httpx.Response:
    return httpx.post(f"{app.url}/v1/{path}", json=body, timeout=120, headers={"authorization": f"Bearer {KEYS['main']}"})


def _in_process(tiny_model, ids: list[int]) -> list[float]:
    """Each token's log-probability after the ones before it, with a plain transformers forward."""
    import torch
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(tiny_model).eval()
    with torch.no_grad():
        lp = torch.log_softmax(model(torch.tensor([ids])).logits[0].float(), -1)
    return [lp[p - 1, ids[p]].item() for p in range(1, len(ids))]


def test_echo_returns_the_prompts_token_logprobs_and_max_tokens_zero(app, tiny_model):
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(tiny_model)
    ids = tok("Patient is a 67 year old with hypertension", add_special_tokens=False)["input_ids"]
    r = _post(app, "completions", {"model": "base", "prompt": [ids, ids[:5]], "echo": True, "max_tokens": 0, "logprobs": 2,
                                   "temperature": 0})
    assert r.status_code == 200, r.text
    body = r.json()
    assert [c["index"] for c in body["choices"]] == [0, 1]
    lp = body["choices"][0]["logprobs"]
    assert lp["token_logprobs"][0] is None and lp["top_logprobs"][0] is None and len(lp["tokens"]) == len(ids)
    assert lp["token_logprobs"][1:] == pytest.approx(_in_process(tiny_model, ids), abs=1e-4)
    assert all(len(t) == 2 and max(t.values()) >= v - 1e-6 for t, v in zip(lp["top_logprobs"][1:], lp["token_logprobs"][1:]))
    assert body["choices"][0]["text"] == tok.decode(ids) and body["usage"]["completion_tokens"] == 0
    assert body["usage"]["prompt_tokens"] == len(ids) + 5
    # lm-evaluation-harness's request: echo, max_tokens 1, logprobs 1 -> the prompt's tokens then one generated token
    one = _post(app, "completions", {"model": "base", "prompt": [ids], "echo": True, "max_tokens": 1, "logprobs": 1,
                                     "temperature": 0}).json()["choices"][0]["logprobs"]
    assert len(one["token_logprobs"]) == len(ids) + 1 and one["token_logprobs"][1:len(ids)] == pytest.approx(lp["token_logprobs"][1:])


def test_generated_logprobs_completions_and_chat(app):
    r = client(app).completions.create(model="coder", prompt="what is the code?", max_tokens=6, temperature=0, logprobs=3)
    lp = r.choices[0].logprobs
    assert len(lp.tokens) == len(lp.token_logprobs) == r.usage.completion_tokens and "".join(lp.tokens) == r.choices[0].text
    assert all(len(t) == 3 for t in lp.top_logprobs) and lp.text_offset[0] == 0
    c = client(app).chat.completions.create(model="coder", messages=[{"role": "user", "content": "what is the code?"}],
                                            max_tokens=8, temperature=0, logprobs=True, top_logprobs=2)
    content = c.choices[0].logprobs.content
    assert "".join(t.token for t in content) == c.choices[0].message.content
    assert all(t.logprob <= 0 and len(t.top_logprobs) == 2 and t.top_logprobs[0].logprob >= t.logprob - 1e-6 for t in content)


def test_n_choices_seeds_and_penalties(app):
    body = {"model": "base", "prompt": ["hello", "tell me about hypertension please"], "n": 2, "max_tokens": 12,
            "temperature": 1.0, "seed": 11}
    a, b = _post(app, "completions", body).json(), _post(app, "completions", body).json()
    assert [c["index"] for c in a["choices"]] == [0, 1, 2, 3]
    assert [c["text"] for c in a["choices"]] == [c["text"] for c in b["choices"]]  # the same seed, the same answers
    assert a["choices"][0]["text"] != a["choices"][1]["text"]  # choice j samples with seed + j
    plain = _post(app, "completions", {"model": "base", "prompt": "hello", "max_tokens": 24, "temperature": 0}).json()
    penal = _post(app, "completions", {"model": "base", "prompt": "hello", "max_tokens": 24, "temperature": 0,
                                       "frequency_penalty": 2.0, "presence_penalty": 2.0}).json()
    assert penal["choices"][0]["text"] != plain["choices"][0]["text"]


def test_response_format_json_schema_and_json_object(app):
    schema = {"type": "object", "properties": {"code": {"type": "string", "maxLength": 8}, "confidence": {"enum": ["low", "high"]}},
              "required": ["code", "confidence"], "additionalProperties": False}
    c = client(app).chat.completions.create(
        model="coder", messages=[{"role": "user", "content": "what is the code?"}], max_tokens=150, temperature=0,
        response_format={"type": "json_schema", "json_schema": {"name": "answer", "schema": schema}})
    got = json.loads(c.choices[0].message.content)
    assert set(got) == {"code", "confidence"} and got["confidence"] in ("low", "high") and len(got["code"]) <= 8
    assert c.constraint["response_format"] == "json_schema"
    o = client(app).chat.completions.create(model="coder", messages=[{"role": "user", "content": "hello"}], max_tokens=150,
                                            temperature=0.8, seed=3, response_format={"type": "json_object"})
    text = o.choices[0].message.content
    assert text.startswith("{")  # an object opens; a tiny random model may not close one within the token limit
    if o.choices[0].finish_reason == "stop":
        assert isinstance(json.loads(text), dict)


@pytest.mark.parametrize("path,body,param", [
    ("completions", {"model": "coder", "prompt": "x", "echo": True, "stream": True}, "echo"),
    ("completions", {"model": "coder", "prompt": "x", "logprobs": 6}, "logprobs"),
    ("completions", {"model": "coder", "prompt": "x", "max_tokens": 0}, "max_tokens"),
    ("completions", {"model": "coder", "prompt": [[1, 2, 99999]]}, "prompt"),
    ("chat/completions", {"model": "coder", "messages": [{"role": "user", "content": "x"}], "logprobs": True, "top_logprobs": 21}, "top_logprobs"),
    ("chat/completions", {"model": "coder", "messages": [{"role": "user", "content": "x"}], "response_format": {
        "type": "json_schema", "json_schema": {"name": "a", "schema": {"type": "object", "properties": {"a": {"type": "strin"}}}}}},
     "response_format.json_schema.schema"),
    ("chat/completions", {"model": "coder", "messages": [{"role": "user", "content": "x"}], "n": 2, "stream": True}, "n"),
])
def test_evaluation_parameters_bad_input_is_a_400_naming_the_parameter(app, path, body, param):
    r = _post(app, path, body)
    assert r.status_code == 400, r.text
    err = r.json()["error"]
    assert err["param"] == param and err["type"] == "invalid_request_error" and "Traceback" not in r.text


def _mcq_items(n: int = 8) -> list[dict]:
    """A few real benchmark questions (the shared medical-mcq files), else made-up ones."""
    shared = Path(__file__).resolve().parents[2] / ".." / "shared" / "data" / "medical-mcq"
    rows = []
    for name in ("medmcqa-test.jsonl", "mmlu-test.jsonl"):
        if (shared / name).is_file():
            with open(shared / name, encoding="utf-8") as f:
                rows += [json.loads(next(f)) for _ in range(n // 2)]
    if not rows:
        rows = [{"realidx": f"q{i}", "question": f"Which organ is number {i}?", "answer_idx": "AB"[i % 2],
                 "options": {"A": "heart", "B": "liver"}} for i in range(n)]
    return rows


def run_lm_eval(url: str, model: str, tokenizer_dir: Path, rows: list[dict], work: Path) -> dict[str, int]:
    """lm-evaluation-harness's local-completions against ``url``: the item id -> 1/0 per question."""
    import os

    from lm_eval import simple_evaluate
    from lm_eval.tasks import TaskManager

    docs = work / "docs.jsonl"
    docs.write_text("".join(json.dumps({"id": str(r["realidx"]), "question": r["question"], "choices": list(r["options"].values()),
                                        "gold": list(r["options"]).index(r["answer_idx"])}) + "\n" for r in rows))
    (work / "clinitune_mcq.yaml").write_text(yaml.safe_dump({
        "task": "clinitune_mcq", "dataset_path": "json", "dataset_kwargs": {"data_files": {"test": str(docs)}},
        "test_split": "test", "output_type": "multiple_choice", "doc_to_text": "Question: {{question}}\nAnswer:",
        "doc_to_choice": "{{choices}}", "doc_to_target": "{{gold}}", "metric_list": [{"metric": "acc"}]}))
    os.environ["OPENAI_API_KEY"] = KEYS["main"]
    out = simple_evaluate(model="local-completions", tasks=["clinitune_mcq"], task_manager=TaskManager(include_path=str(work)),
                          model_args={"model": model, "base_url": f"{url}/v1/completions", "tokenizer": str(tokenizer_dir),
                                      "tokenizer_backend": "huggingface", "tokenized_requests": True, "num_concurrent": 1,
                                      "max_retries": 1, "batch_size": 4},
                          log_samples=True, num_fewshot=0)
    return {s["doc"]["id"]: int(s["acc"]) for s in out["samples"]["clinitune_mcq"]}


def test_lm_evaluation_harness_through_the_endpoint_agrees_with_the_in_process_scorer(app, tiny_model, tmp_path):
    """The real client (local-completions, token-id prompts, echo + logprobs) scores the same items the same way."""
    import pandas as pd

    from clinitune.artifacts.model import ModelSpec
    from clinitune.evaluate.benchmarks import BenchmarkFile, grade, load_benchmark, requests
    from clinitune.models.loglik import score_local

    rows = _mcq_items()
    via_api = run_lm_eval(app.url, "base", tiny_model, rows, tmp_path)
    bench = tmp_path / "items.jsonl"
    bench.write_text("".join(json.dumps(r) + "\n" for r in rows))
    b = load_benchmark(BenchmarkFile(name="mcq", path=str(bench)))
    scored = score_local(ModelSpec.plain(tiny_model), pd.DataFrame(requests(b)))
    in_process = grade(b, dict(zip(scored["request_id"], scored["logprob"])))
    assert len(via_api) == len(rows) == len(in_process)
    assert via_api == in_process  # item by item, so the accuracies agree exactly
