"""The MLflow registry: lineage, aliases, promote, one-command rollback, serving notification, bad URIs."""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path

import pytest

from clinitune.errors import UserError
from clinitune.registry import Registry


def _artifact(root: Path, name: str) -> Path:
    d = root / name
    (d / "adapter").mkdir(parents=True)
    (d / "adapter" / "adapter_config.json").write_text(json.dumps({"name": name}))
    (d / "clinitune_artifact.json").write_text(json.dumps({"kind": "adapter", "run_name": name}))
    return d


def _report(root: Path, f1: float, decision: str) -> Path:
    p = root / f"report-{f1}.json"
    p.write_text(json.dumps({"task": {"primary_metric": "task.code_f1"}, "gate": {"decision": decision},
                             "metrics": {"candidate": {"task.code_f1": f1, "task.loss": 1.0}}}))
    p.with_suffix(".html").write_text("<html></html>")
    return p


class _Reload(BaseHTTPRequestHandler):
    received: list = []

    def do_POST(self):  # noqa: N802 - http.server API
        body = self.rfile.read(int(self.headers["Content-Length"]))
        _Reload.received.append(json.loads(body))
        self.send_response(200)
        self.end_headers()

    def log_message(self, *args):  # quiet
        pass


@pytest.fixture(scope="module")
def reload_server():
    server = HTTPServer(("127.0.0.1", 0), _Reload)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}/reload"
    server.shutdown()


@pytest.fixture(scope="module")
def registry(tmp_path_factory, reload_server):
    work = tmp_path_factory.mktemp("registry-work")
    return Registry(f"sqlite:///{work / 'mlflow.db'}", workdir=work, reload_url=reload_server)


def test_register_promote_rollback(registry, tmp_path):
    v1 = registry.register_candidate(_artifact(tmp_path, "ft-a"), _report(tmp_path, 0.4, "promote"),
                                     {"dataset_hash": "d1", "training_config_hash": "t1", "training_config": {"lora": {"r": 8}}})
    assert registry.get_alias("candidate").version == v1
    info = registry.get_version(v1)
    assert info.tags["clinitune.dataset_hash"] == "d1" and info.tags["clinitune.gate_decision"] == "promote"
    assert (Path(info.local_path) / "adapter" / "adapter_config.json").is_file()  # the artifact travelled with it
    run = registry.client.get_run(info.run_id)
    assert run.data.params["lineage.training_config.lora.r"] == "8" and run.data.metrics["eval.task.code_f1"] == 0.4
    assert registry.get_alias("production") is None

    registry.promote(v1)
    v2 = registry.register_candidate(_artifact(tmp_path, "ft-b"), _report(tmp_path, 0.6, "promote"), {"dataset_hash": "d2"})
    assert registry.get_alias("candidate").version == v2 and registry.get_alias("production").version == v1
    registry.promote(v2)
    assert registry.get_alias("production").version == v2
    assert registry.history() == [v1, v2]

    back = registry.rollback()
    assert back.version == v1 and registry.get_alias("production").version == v1
    note = json.loads((registry.notify_dir / "production.json").read_text())
    assert note["version"] == v1 and note["event"] == "rollback" and note["previous_version"] == v2
    assert Path(note["artifact_path"]).is_dir()
    for _ in range(50):  # the POST is synchronous, but allow the server thread to record it
        if _Reload.received and _Reload.received[-1]["event"] == "rollback":
            break
        time.sleep(0.05)
    assert [e["event"] for e in _Reload.received][-3:] == ["promote", "promote", "rollback"]

    with pytest.raises(UserError, match="nothing earlier to roll back"):
        registry.rollback()
    versions = registry.list_versions()
    assert [v.version for v in versions] == [v1, v2]
    assert "production" in versions[0].aliases and "candidate" in versions[1].aliases
    assert registry.resolve(f"v{v2}").version == v2 and registry.resolve("production").version == v1
    with pytest.raises(UserError, match="no alias 'staging'"):
        registry.resolve("staging")
    with pytest.raises(UserError, match="no version '99'"):
        registry.promote(99)


def test_cli_list_show_promote_rollback(registry, tmp_path, capsys):
    from clinitune.cli.main import main

    common = ["--tracking-uri", registry.uri, "--workdir", str(registry.workdir)]
    assert main(["registry", "list", *common]) == 0
    out = capsys.readouterr().out
    assert "production history" in out
    latest = registry.list_versions()[-1].version
    assert main(["registry", "promote", latest, *common]) == 0
    assert registry.get_alias("production").version == latest
    assert main(["registry", "show", "production", *common]) == 0
    assert json.loads(capsys.readouterr().out.split("\n", 1)[1])["version"] == latest
    assert main(["registry", "rollback", *common]) == 0
    assert registry.get_alias("production").version != latest
    assert main(["registry", "show", "nope", *common]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error:") and err.count("\n") == 1


def test_unreachable_or_unusable_uri_is_a_one_line_error(tmp_path):
    t0 = time.time()
    with pytest.raises(UserError) as err:
        Registry("http://127.0.0.1:9", workdir=tmp_path)
    assert "cannot be reached" in str(err.value) and "\n" not in str(err.value) and time.time() - t0 < 15
    bad = tmp_path / "not-a-db.db"
    bad.write_text("hello")
    with pytest.raises(UserError, match="not an SQLite database"):
        Registry(f"sqlite:///{bad}", workdir=tmp_path)
    with pytest.raises(UserError, match="cannot be used"):
        Registry("postgresql://nobody@127.0.0.1:9/mlflow", workdir=tmp_path)
