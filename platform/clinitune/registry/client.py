"""The model registry on MLflow: every candidate registered with lineage; ``candidate`` and
``production`` aliases; promotion and one-command rollback; serving told when production changes.

Store: any MLflow tracking URI; by default ``sqlite:///<workdir>/mlflow.db`` with artifacts under
``<workdir>/mlartifacts`` (``clinitune.tracking``). A registered version holds the training
artifact (``model/``), the evaluation report (``eval/report.json``, ``eval/report.html``, every
item's answers ``eval/answers.jsonl``; ``review.*`` metrics once clinicians reviewed it) and
``lineage.json`` (dataset manifest hash, training config, eval report, gate decision), and carries
the lineage as version tags.

Production history: the registered model's ``clinitune.production_history`` tag lists the
versions that were production, oldest first; ``promote`` appends, ``rollback`` drops the last
and points ``production`` back at the one before it.

Serving reload: after every change of ``production`` the registry writes
``<workdir>/registry/production.json`` (model name, version, local artifact path, event, time)
atomically, and POSTs the same JSON to ``reload_url`` when one is configured. A failed POST is
logged and reported, never undoes the change: serving also picks the file up when it polls it.
"""

from __future__ import annotations

import json
import logging
import time
import urllib.error
import urllib.request
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from clinitune.artifacts.model import DESCRIPTOR
from clinitune.artifacts.publish import publish_whole, write_whole
from clinitune.errors import UserError
from clinitune.registry.settings import DEFAULT_MODEL_NAME

log = logging.getLogger(__name__)

EXPERIMENT = "clinitune-registry"
CANDIDATE, PRODUCTION = "candidate", "production"
HISTORY_TAG = "clinitune.production_history"
NOTIFY_FILE = "production.json"
_SQLITE_MAGIC = b"SQLite format 3\x00"


@dataclass
class VersionInfo:
    name: str
    version: str
    aliases: list[str]
    run_id: str | None
    source: str
    local_path: str | None
    tags: dict[str, str] = field(default_factory=dict)
    created_at: int = 0  # ms since epoch

    def to_json(self) -> dict:
        return asdict(self)


def _source_to_path(source: str) -> str | None:
    if source.startswith("file://"):
        from urllib.parse import unquote, urlparse

        return unquote(urlparse(source).path)
    if "://" not in source and ":" not in source.split("/")[0]:
        return source
    return None


def check_reachable(uri: str) -> None:
    """Fail fast, in one line, when the tracking store cannot be used."""
    if uri.startswith("sqlite:///"):
        db = Path(uri.removeprefix("sqlite:///"))
        if db.exists() and (not db.is_file() or db.stat().st_size and db.read_bytes()[:16] != _SQLITE_MAGIC):
            raise UserError(f"registry URI '{uri}': '{db}' is not an SQLite database.",
                            fix="point registry_uri at an MLflow SQLite file or server, or remove the file.")
        try:
            db.parent.mkdir(parents=True, exist_ok=True)
        except OSError as err:
            raise UserError(f"registry URI '{uri}': cannot create '{db.parent}' ({err.strerror}).",
                            fix="use a writable directory for the registry database.") from None
        return
    if uri.startswith(("http://", "https://")):
        try:
            with urllib.request.urlopen(uri.rstrip("/") + "/health", timeout=5) as resp:  # noqa: S310 - configured URI
                resp.read(64)
        except urllib.error.HTTPError:
            return  # the server answered: reachable (some deployments have no /health)
        except (urllib.error.URLError, OSError, ValueError) as err:
            reason = getattr(err, "reason", err)
            raise UserError(f"registry URI '{uri}' cannot be reached ({type(reason).__name__ if not isinstance(reason, str) else reason}).",
                            fix="start the MLflow server, or correct registry_uri / MLFLOW_TRACKING_URI.") from None


class Registry:
    """MLflow model registry for one registered model (``model_name``)."""

    def __init__(self, tracking_uri: str | None = None, *, model_name: str = DEFAULT_MODEL_NAME, workdir: str | Path = "work",
                 notify_dir: str | Path | None = None, reload_url: str | None = None):
        from clinitune import tracking

        logging.getLogger("mlflow.store.db.utils").setLevel(logging.WARNING)  # table creation chatter
        self.workdir = Path(workdir).expanduser()
        self.uri = tracking.resolve_tracking_uri(tracking_uri, self.workdir)
        check_reachable(self.uri)
        self.model_name = model_name
        self.notify_dir = Path(notify_dir) if notify_dir else self.workdir / "registry"
        self.reload_url = reload_url
        try:
            self.client = tracking.client(self.uri)
            self.client.search_registered_models(max_results=1)
        except Exception as err:  # noqa: BLE001 - any store failure is a configuration problem here
            raise UserError(f"registry URI '{self.uri}' cannot be used ({type(err).__name__}).",
                            fix="check the URI, its credentials and that the MLflow server/database is up.") from None

    # --- reading -------------------------------------------------------------------------------

    def _info(self, mv) -> VersionInfo:
        return VersionInfo(name=mv.name, version=str(mv.version), aliases=list(getattr(mv, "aliases", []) or []),
                           run_id=mv.run_id, source=mv.source, local_path=_source_to_path(mv.source),
                           tags=dict(mv.tags or {}), created_at=int(mv.creation_timestamp or 0))

    def _model_exists(self) -> bool:
        from mlflow.exceptions import MlflowException

        try:
            self.client.get_registered_model(self.model_name)
            return True
        except MlflowException:
            return False

    def list_versions(self) -> list[VersionInfo]:
        """Every version of the model, oldest first."""
        if not self._model_exists():
            return []
        mvs = self.client.search_model_versions(f"name='{self.model_name}'")
        full = [self.client.get_model_version(self.model_name, mv.version) for mv in mvs]  # aliases are filled here
        return sorted((self._info(mv) for mv in full), key=lambda v: int(v.version))

    def get_version(self, version: str | int) -> VersionInfo:
        from mlflow.exceptions import MlflowException

        try:
            return self._info(self.client.get_model_version(self.model_name, str(version)))
        except MlflowException:
            raise UserError(f"model '{self.model_name}' has no version '{version}'.",
                            fix="run `clinitune registry list` to see the versions.") from None

    def get_alias(self, alias: str) -> VersionInfo | None:
        """The version behind ``alias`` (with its local artifact path), or None when the alias is unset."""
        from mlflow.exceptions import MlflowException

        if not self._model_exists():
            return None
        try:
            return self._info(self.client.get_model_version_by_alias(self.model_name, alias))
        except MlflowException:
            return None

    def resolve(self, key: str, *, field_name: str = "model") -> VersionInfo:
        """A version number or alias -> VersionInfo with a local artifact path (downloaded when remote)."""
        key = str(key).strip()
        if key[:1] in ("v", "V") and key[1:].isdigit():
            key = key[1:]
        info = self.get_version(key) if key.isdigit() else self.get_alias(key)
        if info is None:
            raise UserError(f"{field_name}: registry model '{self.model_name}' has no alias '{key}'.",
                            fix="run `clinitune registry list` for versions and aliases.")
        if info.local_path is None or not Path(info.local_path).exists():
            info.local_path = self._download(info)
        return info

    def _download(self, info: VersionInfo) -> str:
        import mlflow.artifacts

        dest = self.workdir / "registry" / "cache" / f"{self.model_name}-v{info.version}"
        if (dest / "model").is_dir():
            return str(dest / "model")
        # published whole: an interrupted download never looks like a cached version
        with publish_whole(dest, require=f"model/{DESCRIPTOR}", keep_existing=True) as staging:
            mlflow.artifacts.download_artifacts(artifact_uri=info.source, dst_path=str(staging), tracking_uri=self.uri)
        return str(dest / "model")

    def history(self) -> list[str]:
        if not self._model_exists():
            return []
        tags = self.client.get_registered_model(self.model_name).tags or {}
        try:
            return [str(v) for v in json.loads(tags.get(HISTORY_TAG, "[]"))]
        except json.JSONDecodeError:
            return []

    # --- writing -------------------------------------------------------------------------------

    def _ensure_model(self) -> None:
        from mlflow.exceptions import MlflowException

        if self._model_exists():
            return
        try:
            self.client.create_registered_model(self.model_name, tags={HISTORY_TAG: "[]"},
                                                description="Clinitune fine-tuned clinical model (candidates and production).")
        except MlflowException:
            if not self._model_exists():  # not a creation race
                raise

    def register_candidate(self, artifact_dir: str | Path, report_path: str | Path | None, lineage: dict[str, Any],
                           extra_metrics: dict[str, float] | None = None) -> str:
        """Register a trained artifact (and its eval report) as a new version; alias it ``candidate``.

        ``extra_metrics`` are logged on the version's run beside the report's (e.g. a clinician review's)."""
        from clinitune import tracking

        artifact_dir = Path(artifact_dir)
        if not artifact_dir.is_dir():
            raise UserError(f"artifact '{artifact_dir}' is not a directory.", fix="pass the directory `clinitune train` wrote.")
        run_id = tracking.start_run(self.uri, EXPERIMENT, f"register-{artifact_dir.name}",
                                    tags={"clinitune.stage": "register", "clinitune.artifact_dir": str(artifact_dir.resolve())},
                                    artifact_root=self.workdir / "mlartifacts")
        try:
            tracking.log_params(self.uri, run_id, {"lineage": lineage})
            report = None
            if report_path:
                rp = Path(report_path)
                report = json.loads(rp.read_text(encoding="utf-8"))
                metrics = {f"eval.{k}": v for k, v in (report.get("metrics", {}).get("candidate") or {}).items()}
                tracking.log_metrics(self.uri, run_id, metrics, step=0)
                self.client.log_artifact(run_id, str(rp), "eval")
                html = rp.with_suffix(".html")
                if html.is_file():
                    self.client.log_artifact(run_id, str(html), "eval")
                answers = rp.parent / str((report.get("answers") or {}).get("file") or "answers.jsonl")
                if answers.is_file():  # every item's answers: a review campaign can be made from the registry alone
                    self.client.log_artifact(run_id, str(answers), "eval")
            if extra_metrics:
                tracking.log_metrics(self.uri, run_id, extra_metrics, step=0)
            self.client.log_artifacts(run_id, str(artifact_dir), "model")
            self.client.log_text(run_id, json.dumps(lineage, indent=2, default=str), "lineage.json")
            tracking.end_run(self.uri, run_id, "FINISHED")
        except BaseException:
            tracking.end_run(self.uri, run_id, "FAILED")
            raise
        self._ensure_model()
        source = f"{self.client.get_run(run_id).info.artifact_uri}/model"
        tags = {k: str(v)[:500] for k, v in _lineage_tags(lineage, report).items()}
        mv = self.client.create_model_version(self.model_name, source, run_id=run_id, tags=tags)
        self.set_alias(CANDIDATE, mv.version)
        log.info("registered %s version %s", self.model_name, mv.version)
        return str(mv.version)

    def set_alias(self, name: str, version: str | int) -> None:
        self.get_version(version)  # exists
        self.client.set_registered_model_alias(self.model_name, name, str(version))

    def set_tag(self, version: str | int, key: str, value: Any) -> None:
        self.client.set_model_version_tag(self.model_name, str(version), key, str(value))

    def promote(self, version: str | int) -> VersionInfo:
        """Make ``version`` production (recorded in the history) and tell serving."""
        info = self.get_version(version)
        current = self.get_alias(PRODUCTION)
        history = self.history()
        if current is not None and current.version == info.version:
            return info
        if current is not None and (not history or history[-1] != current.version):
            history.append(current.version)  # production set outside promote(): keep it reachable by rollback
        history.append(info.version)
        self.client.set_registered_model_alias(self.model_name, PRODUCTION, info.version)
        self.client.set_registered_model_tag(self.model_name, HISTORY_TAG, json.dumps(history))
        self.set_tag(info.version, "clinitune.promoted_at", time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()))
        info = self.get_version(info.version)
        self.notify(info, "promote", current.version if current else None)
        return info

    def rollback(self) -> VersionInfo:
        """Point production back at the version that was production before the current one."""
        current = self.get_alias(PRODUCTION)
        if current is None:
            raise UserError(f"model '{self.model_name}' has no production version to roll back.",
                            fix="promote a version first (clinitune registry promote VERSION).")
        history = self.history()
        while history and history[-1] != current.version:
            history.pop()
        if len(history) < 2:
            raise UserError(f"model '{self.model_name}': version {current.version} is the first production version; there is nothing earlier to roll back to.",
                            fix="promote another version instead (clinitune registry promote VERSION).")
        history.pop()
        previous = history[-1]
        self.client.set_registered_model_alias(self.model_name, PRODUCTION, previous)
        self.client.set_registered_model_tag(self.model_name, HISTORY_TAG, json.dumps(history))
        self.set_tag(current.version, "clinitune.rolled_back_at", time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()))
        info = self.get_version(previous)
        self.notify(info, "rollback", current.version)
        return info

    # --- serving -------------------------------------------------------------------------------

    def notify(self, info: VersionInfo, event: str, previous: str | None) -> dict:
        """Write ``production.json`` and POST it to ``reload_url`` (if any); returns what was done."""
        payload = {"model_name": self.model_name, "version": info.version, "alias": PRODUCTION,
                   "artifact_path": info.local_path, "source": info.source, "run_id": info.run_id, "event": event,
                   "previous_version": previous, "tracking_uri": self.uri,
                   "at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
        path = write_whole(self.notify_dir / NOTIFY_FILE, json.dumps(payload, indent=2))
        done = {"file": str(path), "http": None}
        if self.reload_url:
            req = urllib.request.Request(self.reload_url, data=json.dumps(payload).encode(), method="POST",
                                         headers={"Content-Type": "application/json"})
            try:
                with urllib.request.urlopen(req, timeout=10) as resp:  # noqa: S310 - configured URL
                    done["http"] = f"ok {resp.status}"
            except (urllib.error.URLError, OSError) as err:
                done["http"] = f"failed: {type(err).__name__}"
                log.warning("serving reload POST to %s failed (%s); production.json was written", self.reload_url, type(err).__name__)
        return done


def _lineage_tags(lineage: dict[str, Any], report: dict | None) -> dict[str, Any]:
    tags = {f"clinitune.{k}": v for k, v in lineage.items() if isinstance(v, (str, int, float, bool)) and v is not None}
    if report:
        pm = (report.get("task") or {}).get("primary_metric")
        cand = (report.get("metrics") or {}).get("candidate") or {}
        if pm and cand.get(pm) is not None:
            tags[f"clinitune.eval.{pm}"] = round(float(cand[pm]), 6)
        gate = report.get("gate")
        if gate:
            tags["clinitune.gate_decision"] = gate.get("decision")
    return tags
