"""Serving building blocks without Ray: request parsing, API keys and rate limits, the PHI guard,
adapter resolution (static, registry pointer file), the audit log and the config files."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from clinitune.config import load_config
from clinitune.errors import ConfigError
from clinitune.serve.adapters import BASE_KEY, AdapterCatalog
from clinitune.serve.audit import AuditLog, AuditRecord
from clinitune.serve.auth import KeyStore, RateLimiter, hash_key, new_key
from clinitune.serve.config import AuthSettings, PhiGuardSettings, ServeAppConfig, ServeArgs
from clinitune.serve.protocol import ApiError, ChatCompletionRequest, CompletionRequest, parse_request

ROOT = Path(__file__).resolve().parents[2]


# -- protocol ----------------------------------------------------------------------------------
def _chat(**kw) -> bytes:
    return json.dumps({"model": "m", "messages": [{"role": "user", "content": "hi"}], **kw}).encode()


def test_chat_request_parsing():
    req = parse_request(_chat(stop="END", seed=3, max_completion_tokens=9, retrieval={"kb": "icd10", "top_k": 2}),
                        ChatCompletionRequest)
    assert req.stop_list() == ("END",) and req.limit() == 9 and req.retrieval.kb == "icd10"
    parts = parse_request(json.dumps({"model": "m", "messages": [
        {"role": "developer", "content": [{"type": "text", "text": "be brief"}]},
        {"role": "user", "content": "hi"}]}).encode(), ChatCompletionRequest)
    assert parts.plain_messages() == [{"role": "system", "content": "be brief"}, {"role": "user", "content": "hi"}]


@pytest.mark.parametrize("body, param, code", [
    (b"", None, "invalid_json"),
    (b'"text"', None, "invalid_json"),
    (_chat(top_p=0), "top_p", "invalid_value"),
    (_chat(temperature=3), "temperature", "invalid_value"),
    (_chat(stop=[""]), "stop", "invalid_value"),
    (_chat(presence_penalty=2.5), "presence_penalty", "invalid_value"),
    (_chat(top_logprobs=2), "top_logprobs", "invalid_value"),
    (_chat(logprobs=True, stream=True), "logprobs", "invalid_value"),
    (_chat(n=17), "n", "invalid_value"),
    (_chat(functions=[]), "functions", "unknown_parameter"),
    (_chat(retrieval={"kb": "x", "mode": "fast"}), "retrieval.mode", "unknown_parameter"),
    (json.dumps({"messages": [{"role": "user", "content": "x"}]}).encode(), "model", "missing_required_parameter"),
    (json.dumps({"model": "m", "messages": [{"role": "user", "content": [{"type": "image_url", "image_url": {}}]}]}).encode(),
     "messages.0.content.str", "invalid_value"),
])
def test_bad_chat_requests_name_the_parameter(body, param, code):
    with pytest.raises(ApiError) as err:
        parse_request(body, ChatCompletionRequest)
    assert err.value.status == 400 and err.value.code == code and err.value.param == param
    assert err.value.body()["error"]["type"] == "invalid_request_error"


def test_completion_request():
    req = parse_request(json.dumps({"model": "m", "prompt": ["one prompt"]}).encode(), CompletionRequest)
    assert req.prompts() == ["one prompt"] and req.limit() == 16
    many = parse_request(json.dumps({"model": "m", "prompt": [[1, 2], [3]], "echo": True, "max_tokens": 0}).encode(), CompletionRequest)
    assert many.prompts() == [[1, 2], [3]] and many.limit() == 0
    assert parse_request(json.dumps({"model": "m", "prompt": [5, 6]}).encode(), CompletionRequest).prompts() == [[5, 6]]
    for bad in ({"prompt": []}, {"prompt": " "}, {"prompt": ["a", ""]}, {"prompt": [[1, -2]]}, {"prompt": "x", "suffix": "y"},
                {"prompt": "x", "best_of": 2}, {"prompt": "x", "echo": True, "stream": True}, {"prompt": "x", "logprobs": 6},
                {"prompt": "x", "max_tokens": 0}):
        with pytest.raises(ApiError):
            parse_request(json.dumps({"model": "m", **bad}).encode(), CompletionRequest)


# -- auth --------------------------------------------------------------------------------------
def test_keys_are_checked_by_hash_from_config_and_environment():
    k1, k2 = new_key(), new_key()
    assert k1 != k2 and len(k1) > 40
    settings = AuthSettings(keys=[{"id": "a", "sha256": hash_key(k1), "models": ["clinitune", "coder*"]}], keys_env="KEYS")
    store = KeyStore(settings, environ={"KEYS": json.dumps([{"id": "b", "sha256": "sha256:" + hash_key(k2)}])})
    a = store.authenticate(f"Bearer {k1}")
    assert a.key_id == "a" and a.may_use("clinitune") and a.may_use("coder:v3") and not a.may_use("leaky")
    assert store.authenticate(f"bearer {k2}").key_id == "b"
    for header in (None, "", "Bearer", f"Basic {k1}", "Bearer wrong", k1):
        assert store.authenticate(header) is None


def test_key_configuration_mistakes_are_config_errors():
    with pytest.raises(ConfigError, match="no API key is configured"):
        KeyStore(AuthSettings(keys_env=None))
    with pytest.raises(ConfigError, match="not valid JSON"):
        KeyStore(AuthSettings(keys_env="K"), environ={"K": "{"})
    with pytest.raises(ConfigError, match=r"\$K\[0\].*sha256"):
        KeyStore(AuthSettings(keys_env="K"), environ={"K": json.dumps([{"id": "x", "sha256": "short"}])})
    dup = {"id": "x", "sha256": hash_key("k")}
    with pytest.raises(ConfigError, match="more than once"):
        KeyStore(AuthSettings(keys=[dup, dup], keys_env=None))
    assert KeyStore(AuthSettings(enabled=False, keys_env=None)).authenticate(None).key_id == "anonymous"


def test_rate_limiter_token_bucket():
    now = [0.0]
    rl = RateLimiter(clock=lambda: now[0])
    assert [rl.check("k", 3) for _ in range(3)] == [0.0, 0.0, 0.0]
    wait = rl.check("k", 3)
    assert wait == pytest.approx(20.0)  # 3 per minute: one token every 20 s
    assert rl.check("other", 3) == 0.0  # per key
    now[0] = 20.0
    assert rl.check("k", 3) == 0.0 and rl.check("k", 3) > 0
    assert rl.check("k", None) == 0.0


# -- PHI guard ---------------------------------------------------------------------------------
LEAK = "Patient Maria Gonzalez, MRN 4829105, phone 617-555-0142. The code is E11.9."


@pytest.fixture(scope="module")
def guards():
    from clinitune.serve.guard import PhiGuard

    return {m: PhiGuard(PhiGuardSettings(output=m, prompt="block" if m == "block" else "redact", stream_holdback_chars=24))
            for m in ("redact", "block", "off")}


def test_output_redact_block_off(guards):
    r = guards["redact"].output(LEAK)
    assert "Gonzalez" not in r.text and "4829105" not in r.text and "[NAME]" in r.text and "E11.9" in r.text
    assert r.counts["MRN"] == 1 and not r.blocked
    b = guards["block"].output(LEAK)
    assert b.blocked and b.text == "" and b.counts["PHONE"] == 1
    assert guards["block"].output("The code is E11.9.").blocked is False
    assert guards["off"].output(LEAK).text == LEAK


def test_prompt_guard(guards):
    msgs, counts = guards["redact"].prompt([{"role": "user", "content": "Pt John Smith MRN 7654321 has asthma"}])
    assert "7654321" not in msgs[0]["content"] and "asthma" in msgs[0]["content"] and counts["MRN"] == 1
    with pytest.raises(ApiError) as err:
        guards["block"].prompt([{"role": "user", "content": "Pt John Smith MRN 7654321"}])
    assert err.value.status == 400 and err.value.code == "phi_in_prompt" and "7654321" not in err.value.message


@pytest.mark.parametrize("size", [1, 3, 7])
def test_streamed_text_is_checked_before_it_leaves(guards, size):
    sg = guards["redact"].stream()
    out = [sg.feed(LEAK[i:i + size]) for i in range(0, len(LEAK), size)]
    out.append(sg.finish())
    text = "".join(out)
    assert text == guards["redact"].output(LEAK).text
    assert not any(v in piece for piece in out for v in ("Gonzalez", "4829105", "617-555"))
    blocker = guards["block"].stream()
    sent = "".join(blocker.feed(LEAK[i:i + size]) for i in range(0, len(LEAK), size)) + blocker.finish()
    assert blocker.blocked and "Gonzalez" not in sent and "4829105" not in sent


# -- adapters ----------------------------------------------------------------------------------
def _adapter_dir(path: Path) -> Path:
    path.mkdir(parents=True)
    (path / "adapter_config.json").write_text('{"peft_type": "LORA"}')
    (path / "adapter_model.safetensors").write_bytes(b"0")
    return path


def test_catalog_static_registry_pointer_and_hot_reload(tmp_path):
    a = _adapter_dir(tmp_path / "a")
    artifact = tmp_path / "artifact"
    _adapter_dir(artifact / "adapter")
    (artifact / "clinitune_artifact.json").write_text(json.dumps({"kind": "adapter", "system_prompt": "Code the note."}))
    pointer = tmp_path / "registry" / "production.json"
    args = ServeArgs.model_validate({"adapters": {"static": {"coder": str(a)}, "production": "coder",
                                                  "registry": {"pointer_file": str(pointer)}}})
    cat = AdapterCatalog(args)
    assert cat.resolve("base").key == BASE_KEY and cat.resolve("nope") is None
    assert cat.resolve("clinitune").name == "coder"  # static production until the registry has one
    coder_key = cat.resolve("coder").key
    pointer.parent.mkdir()
    pointer.write_text(json.dumps({"model_name": "clinitune-icd10", "version": "7", "artifact_path": str(artifact)}))
    assert cat.refresh() is True
    prod = cat.resolve("clinitune")
    assert (prod.name, prod.version, prod.system_prompt, prod.problem) == ("clinitune-icd10", "7", "Code the note.", None)
    assert prod.key == "registry:clinitune-icd10:v7" and prod.fingerprint == "clinitune-icd10@7"
    assert cat.refresh() is False
    pointer.write_text("{truncated")  # a half-written file never unsets production
    assert cat.refresh() is False and cat.resolve("clinitune").version == "7"
    (a / "adapter_model.safetensors").write_bytes(b"retrained")  # a static adapter rewritten in place
    import os
    os.utime(a / "adapter_model.safetensors", ns=(1, 1))
    cat.refresh()
    assert cat.resolve("coder").key != coder_key
    assert cat.model_ids()[0] == "clinitune" and {"base", "coder"} <= set(cat.model_ids())


def test_catalog_problems_are_reported_not_raised(tmp_path):
    full = tmp_path / "full"
    full.mkdir()
    (full / "clinitune_artifact.json").write_text(json.dumps({"kind": "full"}))
    args = ServeArgs.model_validate({"adapters": {"static": {"full": str(full), "gone": str(tmp_path / "gone")}}})
    cat = AdapterCatalog(args)
    assert "full fine-tune" in cat.resolve("full").problem
    assert "no adapter files" in cat.resolve("gone").problem
    assert "no adapter is promoted" in cat.resolve("clinitune").problem


# -- audit -------------------------------------------------------------------------------------
def test_audit_log_is_json_lines_of_fixed_fields(tmp_path):
    log = AuditLog(tmp_path / "audit" / "a.jsonl")
    log.write(AuditRecord("r1", "chat", key_id="k", model="clinitune", adapter="x", adapter_version="3",
                          prompt_tokens=5, completion_tokens=7, latency_ms=12.345, status=200))
    log.write(AuditRecord("r2", "chat", status=401, error_code="invalid_api_key"))
    log.close()
    lines = [json.loads(x) for x in (tmp_path / "audit" / "a.jsonl").read_text().splitlines()]
    assert [x["request_id"] for x in lines] == ["r1", "r2"]
    assert lines[0]["latency_ms"] == 12.3 and lines[0]["time"].endswith("Z") and lines[1]["key_id"] is None
    assert not ({"prompt", "messages", "text", "content", "answer"} & set(lines[0]))


# -- config ------------------------------------------------------------------------------------
@pytest.mark.parametrize("path", sorted((ROOT / "serving").glob("*.yaml")), ids=lambda p: p.name)
def test_serving_files_are_valid_for_clinitune_and_for_ray_serve(path):
    from ray.serve.schema import ServeDeploySchema

    cfg = load_config(path, ServeAppConfig)
    assert cfg.app.import_path == "clinitune.serve.app:build_app"
    ServeDeploySchema.model_validate(yaml.safe_load(path.read_text()))


def test_config_mistakes_are_one_line_errors(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump({"applications": [{"args": {"batching": {"max_batch_size": 128}}}]}))
    with pytest.raises(ConfigError, match="max_ongoing_requests must be at least batching.max_batch_size"):
        load_config(bad, ServeAppConfig)
    bad.write_text(yaml.safe_dump({"applications": [{"args": {"adapters": {"production": "x"}}}]}))
    with pytest.raises(ConfigError, match="production adapter 'x' is not one of the static adapters"):
        load_config(bad, ServeAppConfig)
    bad.write_text(yaml.safe_dump({"applications": [{"args": {"modle": {}}}]}))
    with pytest.raises(ConfigError, match="unknown config key 'applications.0.args.modle'"):
        load_config(bad, ServeAppConfig)


def test_relative_paths_are_resolved_when_the_app_is_built(tmp_path):
    args = ServeArgs.model_validate({"workdir": "w", "adapters": {"static": {"a": "ad/a"},
                                                                  "registry": {"tracking_uri": "sqlite:///w/mlflow.db"}}})
    r = args.resolved(tmp_path)
    assert r.workdir == str(tmp_path / "w") and r.adapters.static["a"] == str(tmp_path / "ad" / "a")
    assert r.adapters.registry.tracking_uri == f"sqlite:///{tmp_path}/w/mlflow.db"
    assert r.kb_root() == str(tmp_path / "w" / "kb") and r.audit_path() == str(tmp_path / "w" / "audit" / "audit.jsonl")
    assert r.model.base == "smollm2-135m-instruct"  # a registered name stays a name


def test_code_system_of_a_request_and_its_config_errors(tmp_path):
    from clinitune.serve.context import code_system_plan

    off, on = ServeArgs(), ServeArgs(decoding={"code_system": "icd10cm"})
    assert code_system_plan(off, None) is None and code_system_plan(on, None) == "icd10cm"
    assert code_system_plan(off, "icd10cm") == "icd10cm" and code_system_plan(on, "none") is None
    with pytest.raises(ApiError) as err:  # only code systems the server knows; never a path a client names
        code_system_plan(off, f"file:{tmp_path / 'codes.txt'}")
    assert err.value.status == 400 and err.value.param == "code_system" and "icd10cm" in err.value.message
    with pytest.raises(ConfigError, match="decoding.code_system: unknown code system 'snomed'"):
        ServeArgs(decoding={"code_system": "snomed"})
    empty = tmp_path / "empty.txt"
    empty.write_text("")
    with pytest.raises(ConfigError, match="empty code table"):
        ServeArgs(decoding={"code_system": f"file:{empty}"})
