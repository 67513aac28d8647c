"""The evaluation run a campaign is made from: a report directory (or ``report.json``) written by
``clinitune evaluate``, or a registered version (``registry:<version or alias>``) whose lineage names
its report. Reads the report and its stored answers (``evaluate.answers``), and finds the MLflow
runs a closed campaign's summary goes to: the candidate's training run (from its artifact
descriptor) and, for a registered version, the version's run."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from clinitune.errors import UserError
from clinitune.registry.settings import DEFAULT_MODEL_NAME

REGISTRY_PREFIX = "registry:"


@dataclass
class EvalSource:
    ref: str
    report_path: Path
    report: dict
    records: list[dict]
    registry_version: str | None = None
    mlflow_targets: list[dict] = field(default_factory=list)


def _training_run(report: dict) -> dict | None:
    from clinitune.artifacts.model import peek_descriptor

    art = (report.get("candidate") or {}).get("artifact_dir")
    if not art:
        return None
    desc = peek_descriptor(art)
    if desc.get("mlflow_run_id") and desc.get("mlflow_tracking_uri"):
        return {"tracking_uri": desc["mlflow_tracking_uri"], "run_id": desc["mlflow_run_id"], "what": "training run"}
    return None


def _report_file(ref: str) -> Path:
    p = Path(ref).expanduser()
    if p.is_dir():
        p = p / "report.json"
    if not p.is_file():
        raise UserError(f"--eval '{ref}': no evaluation report there (expected a directory holding report.json, or the file).",
                        fix="pass the output directory `clinitune evaluate` printed, or registry:<version>.")
    return p


def _from_registry(ref: str, *, registry_uri: str | None, model_name: str, workdir: str | Path) -> tuple[Path, str, dict]:
    from clinitune.registry import Registry

    key = ref[len(REGISTRY_PREFIX):].strip()
    reg = Registry(registry_uri, model_name=model_name, workdir=workdir)
    k = key[1:] if key[:1] in ("v", "V") and key[1:].isdigit() else key
    info = reg.get_version(k) if k.isdigit() else reg.get_alias(k)
    if info is None:
        raise UserError(f"--eval '{ref}': registry model '{model_name}' has no alias '{key}'.",
                        fix="run `clinitune registry list` for versions and aliases.")
    target = {"tracking_uri": reg.uri, "run_id": info.run_id, "what": f"registered version {info.version}"} if info.run_id else None
    local = info.tags.get("clinitune.eval_report")
    if local and Path(local).is_file():
        return Path(local), info.version, target
    if not info.run_id:
        raise UserError(f"--eval '{ref}': version {info.version} has no evaluation report.",
                        fix="register versions through the pipeline (or `registry` with a report), or pass a report directory.")
    import mlflow.artifacts
    from mlflow.exceptions import MlflowException

    dest = Path(workdir) / "review" / "eval-cache" / f"{model_name}-v{info.version}"
    try:
        got = mlflow.artifacts.download_artifacts(run_id=info.run_id, artifact_path="eval", dst_path=str(dest), tracking_uri=reg.uri)
    except (MlflowException, OSError):
        raise UserError(f"--eval '{ref}': version {info.version} has no evaluation report in the registry.",
                        fix="pass the evaluation's report directory instead.") from None
    p = Path(got) / "report.json"
    if not p.is_file():
        raise UserError(f"--eval '{ref}': version {info.version} has no evaluation report in the registry.",
                        fix="pass the evaluation's report directory instead.")
    return p, info.version, target


def resolve_eval(ref: str, *, registry_uri: str | None = None, model_name: str = DEFAULT_MODEL_NAME,
                 workdir: str | Path = "work") -> EvalSource:
    """The report, stored answers and MLflow targets of an evaluation run (one-line UserErrors)."""
    from clinitune.evaluate.answers import read_answers
    from clinitune.evaluate.report import read_report

    ref = str(ref).strip()
    version, registry_target = None, None
    if ref.startswith(REGISTRY_PREFIX):
        path, version, registry_target = _from_registry(ref, registry_uri=registry_uri, model_name=model_name, workdir=workdir)
    else:
        path = _report_file(ref)
    report = read_report(path)
    records = read_answers(path.parent, report.get("answers"))
    if not records:
        raise UserError(f"--eval '{ref}': the evaluation stored no answers (0 items).", fix="evaluate on a non-empty held-out split.")
    targets = [t for t in (_training_run(report), registry_target) if t]
    return EvalSource(ref, path.resolve(), report, records, version, targets)
