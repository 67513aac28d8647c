"""The continuous loop end to end on the shared local Ray, with a real MLflow SQLite registry.

One scenario, in order (each fixture runs one pipeline tick and builds on the one before):

1. a run on batch A crashes between train and eval; the next tick resumes it at eval without
   retraining, and (permissive gate) promotes version 1;
2. a tick on the same inbox does nothing;
3. batch B dropped into the inbox starts a run on B only, trained from production; an impossible
   gate rejects it: version 2 is registered as candidate, production stays version 1;
4. batch C's run fails in curation: production untouched; abandoning it counts C as processed;
5. batch D under a policy requiring clinician review: ticks end in ``awaiting_review`` (exit 0)
   while its campaign is open; two reviewers grade in a real browser, an admin closes the
   campaign there, and the next tick promotes version 3 with the reviewers' sign-off.
"""

from __future__ import annotations

import hashlib
import json
import re
import shutil
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

N_NOTES = 40


class Crash(RuntimeError):
    """Stands in for a killed driver between two stages."""


def _sha(path: Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def _state(workdir: Path) -> dict:
    return json.loads((workdir / "pipeline" / "state.json").read_text())


def _events(workdir: Path, **match) -> list[dict]:
    lines = (workdir / "pipeline" / "runs.log.jsonl").read_text().splitlines()
    return [e for e in map(json.loads, lines) if all(e.get(k) == v for k, v in match.items())]


def _versions(registry) -> list[str]:
    return [v.version for v in registry.list_versions()]


def _production(registry) -> str | None:
    info = registry.get_alias("production")
    return info.version if info else None


@pytest.fixture(scope="module")
def world(tmp_path_factory, make_pipeline_cfg, write_notes, gate_policies):
    from clinitune.registry import Registry

    root = tmp_path_factory.mktemp("pipeline")
    work, inbox, spare = root / "work", root / "inbox", root / "spare"
    inbox.mkdir()
    write_notes(inbox / "batch-a", N_NOTES, seed=11)
    cfg = make_pipeline_cfg(work, inbox)
    registry = Registry(cfg.registry.tracking_uri, model_name=cfg.registry.model_name, workdir=work)
    return {"root": root, "work": work, "inbox": inbox, "spare": spare, "cfg": cfg, "registry": registry,
            "make": make_pipeline_cfg, "write_notes": write_notes, "policies": gate_policies}


@pytest.fixture(scope="module")
def crashed_then_resumed(ray_session, world):
    from clinitune.pipeline.runner import pipeline_status, run_pipeline

    cfg, work = world["cfg"], world["work"]

    def crash_at_eval(run_id: str, stage: str) -> None:
        if stage == "eval":
            raise Crash(run_id)

    with pytest.raises(Crash):
        run_pipeline(cfg, on_stage=crash_at_eval)
    after_crash = pipeline_status(cfg)
    run_id = after_crash["current"]
    artifact = Path(_state(work)["runs"][run_id]["stages"]["train"]["output"]["artifact"])
    weights = artifact / "adapter" / "adapter_model.safetensors"
    before = {"sha": _sha(weights), "mtime": weights.stat().st_mtime_ns, "versions": _versions(world["registry"]),
              "production": _production(world["registry"])}

    ran: list[str] = []
    result = run_pipeline(cfg, on_stage=lambda rid, stage: ran.append(stage))
    return {"after_crash": after_crash, "run_id": run_id, "artifact": artifact, "weights": weights, "before": before,
            "ran": ran, "result": result}


@pytest.fixture(scope="module")
def second_tick(world, crashed_then_resumed):
    from clinitune.pipeline.runner import run_pipeline

    work = world["work"]
    before = {"versions": _versions(world["registry"]), "events": len(_events(work)),
              "state": _state(work), "runs": sorted(p.name for p in (work / "pipeline" / "runs").iterdir())}
    ran: list[str] = []
    result = run_pipeline(world["cfg"], on_stage=lambda rid, stage: ran.append(stage))
    return {"before": before, "ran": ran, "result": result}


@pytest.fixture(scope="module")
def new_file_run(world, second_tick):
    from clinitune.pipeline.runner import run_pipeline

    spare = world["write_notes"](world["spare"] / "b", N_NOTES, seed=12)
    shutil.copy2(spare / "notes-00000.jsonl", world["inbox"] / "batch-b.jsonl")
    cfg = world["make"](world["work"], world["inbox"], policy=world["policies"]["impossible"])
    production_before = _production(world["registry"])
    result = run_pipeline(cfg)
    return {"result": result, "production_before": production_before, "b_sha": _sha(world["inbox"] / "batch-b.jsonl")}


@pytest.fixture(scope="module")
def failed_run(world, new_file_run):
    from clinitune.pipeline.runner import abandon_current, pipeline_status, run_pipeline

    spare = world["write_notes"](world["spare"] / "c", N_NOTES, seed=13)
    shutil.copy2(spare / "notes-00000.jsonl", world["inbox"] / "batch-c.jsonl")
    reg = world["registry"]
    before = {"production": _production(reg), "versions": _versions(reg)}

    def curation_fails(run_id: str, stage: str) -> None:
        if stage == "curate":
            raise Crash(run_id)

    with pytest.raises(Crash):
        run_pipeline(world["cfg"], on_stage=curation_fails)
    after_failure = {"status": pipeline_status(world["cfg"]), "production": _production(reg), "versions": _versions(reg)}
    abandoned = abandon_current(world["cfg"])
    after_abandon = {"status": pipeline_status(world["cfg"]), "production": _production(reg)}
    tick = run_pipeline(world["cfg"])
    return {"before": before, "after_failure": after_failure, "abandoned": abandoned, "after_abandon": after_abandon,
            "tick": tick}


@pytest.fixture(scope="module")
def reviewed_run(world, failed_run, chromium, review_server):
    from clinitune.cli.main import app
    from clinitune.pipeline.runner import pipeline_status, run_pipeline
    from clinitune.review.accounts import add_user
    from clinitune.review.db import Database

    spare = world["write_notes"](world["spare"] / "d", N_NOTES, seed=14)
    shutil.copy2(spare / "notes-00000.jsonl", world["inbox"] / "batch-d.jsonl")
    policy = {**world["policies"]["permissive"],
              "human_review": {"enabled": True, "min_graded_items": 2, "min_reviewers": 2, "min_win_rate": 0.0}}
    cfg = world["make"](world["work"], world["inbox"], policy=policy)
    reg = world["registry"]
    cfg_path = world["root"] / "pipeline-review.yaml"
    cfg_path.write_text(yaml.safe_dump(cfg.model_dump(mode="json")))
    first = CliRunner().invoke(app, ["pipeline", "run", "--config", str(cfg_path)])
    waiting = {"status": pipeline_status(cfg), "versions": _versions(reg), "production": _production(reg)}
    ran: list[str] = []
    second = run_pipeline(cfg, on_stage=lambda rid, stage: ran.append(stage))

    db_url = f"sqlite:///{world['work'] / 'review.db'}"  # the pipeline's default review database
    db = Database(db_url)
    passwords = {"admin": "admin-passphrase-1", "alice": "alice-passphrase-1", "bob": "bob-passphrase-12"}
    with db.session() as s:
        for name, pw in passwords.items():
            add_user(s, name, pw, "admin" if name == "admin" else "reviewer", min_length=12, actor="test")
    db.dispose()
    base = review_server(db_url, world["work"])
    cid = second.reasons and int(second.reasons[0].split("campaign ")[1].split()[0])

    def signed_in(user: str):
        ctx = chromium.new_context()
        page = ctx.new_page()
        page.set_default_timeout(30_000)
        page.goto(f"{base}/campaigns/{cid}")
        page.fill("#username", user)
        page.fill("#password", passwords[user])
        page.click("#sign-in")
        page.wait_for_url(f"{base}/campaigns/{cid}")
        return ctx, page

    graded = {}
    for user, keys in (("alice", "14a"), ("bob", "25t")):  # every item, by keyboard, until back on the campaign page
        ctx, page = signed_in(user)
        with page.expect_navigation():
            page.click("#start")
        graded[user] = 0
        while re.search(r"/items/\d+", page.url):
            for key in keys:
                page.keyboard.press(key)
            with page.expect_navigation():
                page.keyboard.press("Enter")
            assert page.url.endswith("?saved=1"), page.url
            graded[user] += 1
        ctx.close()
    ctx, admin = signed_in("admin")
    admin.goto(f"{base}/admin")
    admin.once("dialog", lambda d: d.accept())
    admin.click(f"#close-{cid}")
    admin.wait_for_url(f"{base}/campaigns/{cid}?closed=1")
    closed_page = admin.inner_text("main")
    ctx.close()
    final = run_pipeline(cfg)
    return {"first": first, "waiting": waiting, "second": second, "ran": ran, "cid": cid, "closed_page": closed_page,
            "final": final, "graded": graded}


# --- the scenario ----------------------------------------------------------------------------------


@pytest.mark.ray
def test_crash_between_train_and_eval_resumes_at_eval_without_retraining(world, crashed_then_resumed):
    from clinitune.pipeline.runner import STAGES

    c = crashed_then_resumed
    run_id = c["run_id"]
    # the crashed run is left current, with train done and eval not
    assert c["after_crash"]["current"] == run_id
    stages = c["after_crash"]["runs"][run_id]["stages"]
    assert stages["train"] == "done" and stages.get("eval") != "done"
    assert c["before"]["versions"] == [] and c["before"]["production"] is None

    res = c["result"]
    assert res.resumed and res.run_id == run_id
    upto_train = list(STAGES[: STAGES.index("train") + 1])
    assert res.skipped_stages == upto_train
    assert c["ran"] == list(STAGES[STAGES.index("eval"):])
    # the artifact trained before the crash is the one evaluated and registered: same path, same bytes, untouched
    assert Path(_state(world["work"])["runs"][run_id]["stages"]["train"]["output"]["artifact"]) == c["artifact"]
    assert _sha(c["weights"]) == c["before"]["sha"] and c["weights"].stat().st_mtime_ns == c["before"]["mtime"]
    assert len(_events(world["work"], run_id=run_id, stage="train", event="start")) == 1
    assert len(_events(world["work"], run_id=run_id, event="resume")) == 1

    # it finished: evaluated, gated (permissive), registered with lineage and promoted
    assert res.status == "promoted" and res.decision == "promote" and res.version == "1"
    reg = world["registry"]
    assert _production(reg) == "1" and reg.history() == ["1"]
    info = reg.get_version("1")
    assert info.tags["clinitune.pipeline_run_id"] == run_id and info.tags["clinitune.gate_decision"] == "promote"
    assert _sha(Path(info.local_path) / "adapter" / "adapter_model.safetensors") == c["before"]["sha"]
    report = json.loads(Path(res.report_path).read_text())
    assert report["gate"]["decision"] == "promote" and report["canaries"]["candidate"]["n"] == 2
    assert _state(world["work"])["current"] is None
    note = json.loads((world["work"] / "registry" / "production.json").read_text())
    assert note["version"] == "1" and note["event"] == "promote"


@pytest.mark.ray
def test_second_tick_on_the_same_inbox_is_a_noop(world, second_tick):
    t = second_tick
    assert t["result"].status == "noop" and t["result"].run_id is None
    assert t["ran"] == []  # no stage ran: nothing curated, nothing retrained
    assert _versions(world["registry"]) == t["before"]["versions"] == ["1"]
    assert _production(world["registry"]) == "1"
    new_events = _events(world["work"])[t["before"]["events"]:]
    assert [e["event"] for e in new_events] == ["noop"] and new_events[0]["files_seen"] == 1
    after = _state(world["work"])
    assert after["runs"] == t["before"]["state"]["runs"] and after["processed"] == t["before"]["state"]["processed"]
    assert sorted(p.name for p in (world["work"] / "pipeline" / "runs").iterdir()) == t["before"]["runs"]


@pytest.mark.ray
def test_new_file_in_the_inbox_triggers_a_run_on_only_that_file(world, new_file_run):
    res = new_file_run["result"]
    assert res.run_id and not res.resumed and res.skipped_stages == []
    run = _state(world["work"])["runs"][res.run_id]
    assert [f["name"] for f in run["files"]] == ["batch-b.jsonl"]
    assert [f["sha256"] for f in run["files"]] == [new_file_run["b_sha"]]
    curated = Path(run["stages"]["curate"]["output"]["curated"])
    manifest = json.loads((curated / "manifest.json").read_text())
    assert [Path(i["path"]).name for i in manifest["inputs"]] == ["batch-b.jsonl"]
    assert manifest["counts"]["input"] == N_NOTES and manifest["reconciles"]
    # the run started from production (version 1's adapter merged into its base)
    start = run["stages"]["start_model"]["output"]
    assert start["from"] == "production" and start["production_version"] == "1"
    assert (Path(start["model"]) / "config.json").is_file()


@pytest.mark.ray
def test_rejected_run_leaves_production_untouched(world, new_file_run):
    res = new_file_run["result"]
    reg = world["registry"]
    assert new_file_run["production_before"] == "1"
    assert res.status == "rejected" and res.decision == "reject"
    assert any(r.startswith("task_gain") for r in res.reasons)
    # registered for the record (alias candidate, lineage tags), never promoted
    assert res.version == "2" and _versions(reg) == ["1", "2"]
    assert reg.get_alias("candidate").version == "2" and reg.get_version("2").tags["clinitune.gate_decision"] == "reject"
    assert _production(reg) == "1" and reg.history() == ["1"]
    assert json.loads((world["work"] / "registry" / "production.json").read_text())["version"] == "1"


@pytest.mark.ray
def test_failed_run_leaves_production_untouched_and_can_be_abandoned(world, failed_run):
    f = failed_run
    assert f["before"] == {"production": "1", "versions": ["1", "2"]}
    status = f["after_failure"]["status"]
    run_id = status["current"]
    assert run_id and status["runs"][run_id]["stages"] == {"snapshot": "done"}
    assert f["after_failure"]["production"] == "1" and f["after_failure"]["versions"] == ["1", "2"]
    assert f["abandoned"] == run_id
    assert f["after_abandon"]["status"]["current"] is None
    assert f["after_abandon"]["status"]["runs"][run_id]["status"] == "abandoned"
    assert f["after_abandon"]["production"] == "1"
    assert f["tick"].status == "noop"  # the abandoned file counts as processed


@pytest.mark.ray
def test_review_required_waits_until_the_campaign_closes_then_promotes(world, reviewed_run):
    from clinitune.pipeline.runner import STAGES

    r = reviewed_run
    reg = world["registry"]
    # the first tick (CLI) evaluates, makes the campaign and exits 0 saying it waits
    assert r["first"].exit_code == 0, r["first"].output
    n = r["graded"]["alice"]
    assert n >= 2 and r["graded"]["bob"] == n  # each reviewer graded every item of the campaign
    assert ": awaiting_review" in r["first"].output and f"is open (0/{n} items graded by 0 reviewer(s))" in r["first"].output
    status = r["waiting"]["status"]
    run_id = status["current"]
    assert run_id and status["runs"][run_id]["stages"]["review"] == "waiting" and "gate" not in status["runs"][run_id]["stages"]
    assert r["waiting"]["versions"] == ["1", "2"] and r["waiting"]["production"] == "1"  # nothing registered or promoted yet
    # the next tick resumes at review without redoing anything, and still waits
    assert r["second"].status == "awaiting_review" and r["second"].resumed and r["second"].run_id == run_id
    assert r["ran"] == ["review"] and r["second"].skipped_stages == list(STAGES[: STAGES.index("review")])
    assert "Results" in r["closed_page"] and f"{n} of {n} items graded by 2 reviewers" in r["closed_page"]
    # after the admin closed it in the browser, the next tick decides with the sign-off and promotes
    final = r["final"]
    assert final.run_id == run_id and final.status == "promoted" and final.version == "3", final.reasons
    assert _production(reg) == "3"
    report = json.loads(Path(final.report_path).read_text())
    hr = report["human_review"]
    assert hr["campaign_id"] == r["cid"] and hr["graded_items"] == n and hr["reviewers"] == 2
    assert hr["reviewer_names"] == ["alice", "bob"]
    checks = [c for c in report["gate"]["checks"] if c["name"] == "human_review"]
    assert checks and all(c["passed"] for c in checks)
    run = reg.client.get_run(reg.get_version("3").run_id)
    assert run.data.metrics["review.graded_items"] == n and "eval/answers.jsonl" in {
        a.path for a in reg.client.list_artifacts(run.info.run_id, "eval")}
    assert _events(world["work"], run_id=run_id, event="awaiting_review")
    # the candidate's training run got the summary too (found from its artifact when the campaign was made)
    from clinitune.artifacts.model import peek_descriptor

    artifact = _state(world["work"])["runs"][run_id]["stages"]["train"]["output"]["artifact"]
    train_run = reg.client.get_run(peek_descriptor(artifact)["mlflow_run_id"])
    assert train_run.data.metrics["review.reviewers"] == 2 and train_run.data.tags["clinitune.review.campaign_id"] == str(r["cid"])


@pytest.mark.ray
def test_a_campaign_can_be_made_from_a_registered_version(world, reviewed_run, tmp_path):
    from clinitune.review.source import resolve_eval

    reg, version = world["registry"], reviewed_run["final"].version
    kw = {"registry_uri": reg.uri, "model_name": reg.model_name, "workdir": world["work"]}
    local = resolve_eval(f"registry:{version}", **kw)
    assert local.report_path == Path(reviewed_run["final"].report_path).resolve() and local.registry_version == version
    assert any(t["what"] == f"registered version {version}" for t in local.mlflow_targets)
    # without the local report (another machine, a cleaned workdir) the registry's copy is used
    report_dir = local.report_path.parent
    moved = report_dir.rename(tmp_path / "elsewhere")
    try:
        remote = resolve_eval(f"registry:{version}", **kw)
    finally:
        moved.rename(report_dir)
    assert remote.report_path != local.report_path and "eval-cache" in str(remote.report_path)
    assert [r["example_id"] for r in remote.records] == [r["example_id"] for r in local.records]


# --- CLI and entry point ---------------------------------------------------------------------------


def _write_cfg(path: Path, data: dict) -> Path:
    """A pipeline YAML; stage config paths are absolute so the test does not depend on the working directory."""
    configs = Path(__file__).resolve().parents[2] / "jobs" / "configs"
    data = {"finetune_config": str(configs / "train.yaml"), **data}
    path.write_text(yaml.safe_dump(data))
    return path


def test_cli_help_lists_the_commands():
    from clinitune.cli.main import app

    res = CliRunner().invoke(app, ["pipeline", "--help"])
    assert res.exit_code == 0
    for cmd in ("run", "status", "abandon"):
        assert cmd in res.output


def test_cli_bad_config_key_is_one_line_exit_2(tmp_path):
    from clinitune.cli.main import app

    bad = _write_cfg(tmp_path / "pipeline.yaml", {"inbox": str(tmp_path / "inbox"), "inbx": "typo"})
    for cmd in ("run", "status", "abandon"):
        res = CliRunner().invoke(app, ["pipeline", cmd, "--config", str(bad)])
        assert res.exit_code == 2, (cmd, res.output)
        assert "Traceback" not in res.output
        lines = res.output.strip().splitlines()
        assert len(lines) == 1 and "inbx" in lines[0] and "Fix" in lines[0]


def test_cli_missing_inbox_names_the_field(tmp_path):
    from clinitune.cli.main import app

    cfg = _write_cfg(tmp_path / "pipeline.yaml", {"inbox": str(tmp_path / "nowhere"), "workdir": str(tmp_path / "work")})
    res = CliRunner().invoke(app, ["pipeline", "run", "--config", str(cfg)])
    assert res.exit_code == 2
    lines = res.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: inbox") and "Fix" in lines[0]


def test_cli_run_on_an_empty_inbox_is_a_noop_and_status_says_so(tmp_path):
    from clinitune.cli.main import app

    (tmp_path / "inbox").mkdir()
    (tmp_path / "inbox" / "_SUCCESS").write_text("")  # metadata files are not notes
    cfg = _write_cfg(tmp_path / "pipeline.yaml", {"inbox": str(tmp_path / "inbox"), "workdir": str(tmp_path / "work")})
    res = CliRunner().invoke(app, ["pipeline", "run", "--config", str(cfg)])
    assert res.exit_code == 0, res.output
    assert "nothing new" in res.output
    res = CliRunner().invoke(app, ["pipeline", "status", "--config", str(cfg)])
    assert res.exit_code == 0
    status = json.loads(res.output)
    assert status["current"] is None and status["runs"] == {} and status["processed"] == 0
    res = CliRunner().invoke(app, ["pipeline", "abandon", "--config", str(cfg)])
    assert res.exit_code == 0 and "no unfinished run" in res.output


def test_job_entrypoint_returns_2_for_a_bad_config(tmp_path):
    import importlib.util

    spec = importlib.util.spec_from_file_location("pipeline_job", Path(__file__).resolve().parents[2] / "jobs" / "pipeline.py")
    job = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(job)
    bad = _write_cfg(tmp_path / "pipeline.yaml", {"inbox": str(tmp_path), "start_from": "yesterday"})
    assert job.main(["--config", str(bad)]) == 2


# --- the lock --------------------------------------------------------------------------------------


def test_lock_refuses_a_live_holder_and_takes_over_stale_ones(tmp_path):
    import os
    import socket
    import subprocess
    import sys
    import time

    from clinitune.errors import UserError
    from clinitune.pipeline.state import LOCK_FILE, Lock

    path = tmp_path / LOCK_FILE
    here = socket.gethostname()
    live = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        path.write_text(f"{live.pid}@{here}")  # a live process on this host
        with pytest.raises(UserError, match=f"pid {live.pid}"):
            Lock(tmp_path).acquire()
    finally:
        live.kill()
        live.wait()
    with Lock(tmp_path):  # ... the same pid, now dead: taken over
        assert path.read_text() == f"{os.getpid()}@{here}"
    assert not path.exists()

    path.write_text("4242@another-pod")  # another host, fresh heartbeat: cannot be checked, so refused
    with pytest.raises(UserError) as err:
        Lock(tmp_path, stale_after_s=600).acquire()
    assert "another-pod" in str(err.value) and "\n" not in str(err.value)
    old = time.time() - 3600
    os.utime(path, (old, old))  # ... silent for an hour: taken over
    lock = Lock(tmp_path, heartbeat_s=0.05, stale_after_s=600)
    lock.acquire()
    try:
        os.utime(path, (old, old))
        time.sleep(0.5)
        assert time.time() - path.stat().st_mtime < 5  # the holder keeps its heartbeat fresh
    finally:
        lock.release()
    assert not path.exists()
