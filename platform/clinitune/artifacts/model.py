"""The model artifact a training run hands to evaluation, the registry, serving and the pipeline.

Layout (published whole by :func:`write_model_artifact`)::

    clinitune_artifact.json   the descriptor: kind (adapter | full), method, base model, dataset hash
                              and lineage, run ids, final metrics (:class:`ArtifactDescriptor`)
    adapter/                  LoRA / QLoRA: PEFT adapter (adapter_config.json, adapter_model.safetensors)
    model/                    full fine-tuning: Hugging Face weights + tokenizer, loadable on its own
    tokenizer/                tokenizer files and chat template of the base model
    config.json               the resolved training config
    dataset_manifest.json     the tokenised dataset's manifest (counts, lineage)
    metrics.json              final metrics and the reported history

Model references (what evaluation, the pipeline and data replay load) are resolved here too:

* a training artifact directory;
* ``registry:<alias or version>`` (``registry:production``, ``registry:3``): the registered artifact;
* a registered base-model name (``clinitune models list``) or a Hugging Face model directory.

``resolve_ref`` turns one into a :class:`ModelSpec` (paths only); ``load_model`` loads it for
inference with any adapter merged; ``merge_to_dir`` writes the merged weights as a model directory.
"""

from __future__ import annotations

import json
import shutil
import time
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

from clinitune.artifacts.publish import publish_whole
from clinitune.errors import UserError

DESCRIPTOR = "clinitune_artifact.json"
FORMAT = "clinitune.artifact/1"
ADAPTER_DIR = "adapter"
MODEL_DIR = "model"
TOKENIZER_DIR = "tokenizer"
TRAINING_CONFIG = "config.json"
DATASET_MANIFEST = "dataset_manifest.json"
METRICS = "metrics.json"
KINDS = ("adapter", "full")
# the files logged to the tracking server next to the run
SMALL_FILES = (DESCRIPTOR, METRICS, TRAINING_CONFIG, DATASET_MANIFEST)
REGISTRY_PREFIX = "registry:"

# What a Hugging Face tokenizer (and its chat template) is saved as.
TOKENIZER_FILES = ("tokenizer.json", "tokenizer.model", "tokenizer_config.json", "special_tokens_map.json",
                   "chat_template.jinja", "chat_template.json", "vocab.json", "merges.txt")


def copy_tokenizer(src: str | Path, dest: str | Path) -> None:
    """Copy the tokenizer files of model directory ``src`` into ``dest``."""
    src, dest = Path(src), Path(dest)
    dest.mkdir(parents=True, exist_ok=True)
    for name in TOKENIZER_FILES:
        if (src / name).is_file():
            shutil.copy2(src / name, dest / name)


def adapter_kind(method: str) -> str:
    """The artifact kind a training method produces."""
    return "adapter" if method in ("lora", "qlora") else "full"


@dataclass
class ArtifactDescriptor:
    """``clinitune_artifact.json``. Unknown keys of a newer writer are kept in ``extra``."""

    kind: str
    method: str
    base_model: str
    base_model_path: str | None = None
    task: str | None = None
    dataset_hash: str | None = None
    source: dict = field(default_factory=dict)
    max_seq_len: int | None = None
    system_prompt: str | None = None
    run_name: str | None = None
    storage_path: str | None = None
    checkpoint: str | None = None
    mlflow_run_id: str | None = None
    mlflow_tracking_uri: str | None = None
    created_at: str = field(default_factory=lambda: time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()))
    metrics: dict = field(default_factory=dict)
    format: str = FORMAT
    extra: dict = field(default_factory=dict)

    def to_json(self) -> dict:
        d = asdict(self)
        extra = d.pop("extra")
        fmt = d.pop("format")
        return {"format": fmt, **d, **extra}

    @classmethod
    def from_json(cls, d: dict) -> "ArtifactDescriptor":
        known = {f.name for f in fields(cls)} - {"extra"}
        return cls(**{k: v for k, v in d.items() if k in known}, extra={k: v for k, v in d.items() if k not in known})


def is_artifact(path: str | Path) -> bool:
    return (Path(path) / DESCRIPTOR).is_file()


def read_descriptor(path: str | Path, *, field_name: str | None = None) -> dict:
    """The descriptor of artifact directory ``path`` as a dict; a one-line UserError when it is not one."""
    p = Path(path) / DESCRIPTOR
    where = f"{field_name}: " if field_name else ""
    if not p.is_file():
        raise UserError(f"{where}'{path}' is not a Clinitune model artifact (no {DESCRIPTOR}).",
                        fix="pass the directory that `clinitune train` printed.")
    try:
        data = json.loads(p.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError):
        raise UserError(f"{where}'{p}' cannot be read as JSON.", fix="re-run training to rewrite the artifact.") from None
    if not isinstance(data, dict):
        raise UserError(f"{where}'{p}' is not a JSON object.", fix="re-run training to rewrite the artifact.")
    return data


def peek_descriptor(path: str | Path) -> dict:
    """The descriptor when ``path`` holds a readable one, else ``{}`` (for callers that record problems)."""
    try:
        return read_descriptor(path)
    except UserError:
        return {}


def find_adapter(path: str | Path) -> Path | None:
    """The PEFT adapter directory at ``path``: the directory itself or an artifact's ``adapter/``; None if neither."""
    p = Path(path)
    for candidate in (p, p / ADAPTER_DIR):
        if (candidate / "adapter_config.json").is_file():
            return candidate
    return None


def has_adapter(path: str | Path) -> bool:
    return find_adapter(path) is not None


def _read_json(path: Path) -> dict:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError):
        return {}
    return data if isinstance(data, dict) else {}


def training_config(artifact_dir: str | Path) -> dict:
    """The resolved training config the artifact was made with (``{}`` when absent or unreadable)."""
    return _read_json(Path(artifact_dir) / TRAINING_CONFIG)


def training_metrics(artifact_dir: str | Path) -> dict:
    """``{"final": {...}, "history": [...]}`` (``{}`` when absent or unreadable)."""
    return _read_json(Path(artifact_dir) / METRICS)


def write_model_artifact(out: str | Path, *, descriptor: ArtifactDescriptor, weights_dir: str | Path,
                         tokenizer_from: str | Path, training_config: dict, dataset_manifest: dict,
                         metrics: dict, history: list[dict]) -> Path:
    """Assemble an artifact from trained weights (a checkpoint's ``adapter/`` or ``model/``); published whole."""
    out = Path(out)
    weights_dir = Path(weights_dir)
    if descriptor.kind not in KINDS:
        raise ValueError(f"artifact kind {descriptor.kind!r} is not one of {KINDS}")
    if not weights_dir.is_dir():
        raise RuntimeError(f"the trained weights directory {weights_dir} does not exist")
    with publish_whole(out, require=DESCRIPTOR) as staging:
        sub = ADAPTER_DIR if descriptor.kind == "adapter" else MODEL_DIR
        shutil.copytree(weights_dir, staging / sub)
        copy_tokenizer(tokenizer_from, staging / TOKENIZER_DIR)
        if descriptor.kind == "full":
            copy_tokenizer(tokenizer_from, staging / MODEL_DIR)
        (staging / TRAINING_CONFIG).write_text(json.dumps(training_config, indent=2), encoding="utf-8")
        (staging / DATASET_MANIFEST).write_text(json.dumps(dataset_manifest, indent=2), encoding="utf-8")
        (staging / METRICS).write_text(json.dumps({"final": metrics, "history": history}, indent=2), encoding="utf-8")
        (staging / DESCRIPTOR).write_text(json.dumps(descriptor.to_json(), indent=2), encoding="utf-8")
    return out


# --- model references ----------------------------------------------------------------------------


@dataclass
class ModelSpec:
    """What to load for a model reference: paths only, nothing loaded."""

    ref: str  # the reference as given
    name: str  # short display name
    kind: str  # adapter | full | hf
    model_path: str  # weights directory (the base, for an adapter)
    tokenizer_path: str
    adapter_path: str | None = None
    artifact_dir: str | None = None
    descriptor: dict = field(default_factory=dict)
    registry_version: str | None = None

    def to_json(self) -> dict:
        d = asdict(self)
        d["descriptor"] = {k: v for k, v in self.descriptor.items() if k in (
            "kind", "method", "base_model", "task", "dataset_hash", "run_name", "created_at", "system_prompt")}
        return d

    @property
    def base_ref(self) -> str | None:
        """The base model this one was trained from (artifacts only)."""
        if self.kind == "adapter":
            return self.model_path
        return self.descriptor.get("base_model_path") or self.descriptor.get("base_model")

    @classmethod
    def plain(cls, model_dir: str | Path, name: str | None = None) -> "ModelSpec":
        """A Hugging Face model directory, as is."""
        return cls(ref=str(model_dir), name=name or Path(model_dir).name, kind="hf", model_path=str(model_dir),
                   tokenizer_path=str(model_dir))


def _base_path(descriptor: dict, field_name: str) -> str:
    from clinitune.models.catalog import resolve_model

    base_path = descriptor.get("base_model_path")
    if base_path and (Path(base_path) / "config.json").is_file():
        return str(base_path)
    base = descriptor.get("base_model")
    if not base:
        raise UserError(f"{field_name}: the artifact names no base model.", fix="re-run training to rewrite the artifact.")
    return str(resolve_model(base))


def spec_from_artifact(d: Path, ref: str, field_name: str = "model") -> ModelSpec:
    desc = read_descriptor(d)
    name = desc.get("run_name") or d.name
    if desc.get("kind") == "full":
        return ModelSpec(ref, name, "full", str(d / MODEL_DIR), str(d / MODEL_DIR), None, str(d), desc)
    adapter = d / ADAPTER_DIR
    if not (adapter / "adapter_config.json").is_file():
        raise UserError(f"{field_name}: artifact '{d}' has no {ADAPTER_DIR}/adapter_config.json.",
                        fix="pass a complete training artifact (the directory `clinitune train` printed).")
    tok = d / TOKENIZER_DIR if (d / TOKENIZER_DIR).is_dir() else None
    base = _base_path(desc, field_name)
    return ModelSpec(ref, name, "adapter", base, str(tok or base), str(adapter), str(d), desc)


def resolve_ref(ref: str, *, field_name: str = "model", registry: Any = None) -> ModelSpec:
    """A model reference -> ModelSpec; a missing model is a one-line UserError naming ``field_name``."""
    ref = str(ref or "").strip()
    if not ref:
        raise UserError(f"{field_name} is empty.", fix="name a training artifact directory, registry:<alias>, or a base model.")
    if ref.startswith(REGISTRY_PREFIX):
        if registry is None:
            raise UserError(f"{field_name} '{ref}' needs the model registry.", fix="set registry.tracking_uri (or run inside a workdir with one).")
        key = ref[len(REGISTRY_PREFIX):]
        info = registry.resolve(key, field_name=field_name)
        spec = resolve_ref(info.local_path, field_name=field_name)
        spec.ref, spec.registry_version = ref, str(info.version)
        spec.name = f"v{info.version}"
        return spec
    p = Path(ref).expanduser()
    if p.is_dir() and is_artifact(p):
        return spec_from_artifact(p.resolve(), ref, field_name)
    from clinitune.models.catalog import resolve_model

    try:
        path = resolve_model(ref)
    except UserError as err:
        raise UserError(f"{field_name}: {err}") from None
    return ModelSpec(ref, Path(ref).name if ("/" in ref) else ref, "hf", str(path), str(path))


def base_spec(candidate: ModelSpec, field_name: str = "baseline") -> ModelSpec:
    """The model the candidate was trained from."""
    if candidate.kind == "hf":
        raise UserError(f"{field_name} is 'base' but the candidate '{candidate.ref}' is a plain model, not a training artifact.",
                        fix="set baseline to a model reference (a base model name or directory).")
    spec = resolve_ref(candidate.base_ref, field_name=field_name)
    base_name = candidate.descriptor.get("base_model")
    spec.name = f"base:{Path(base_name).name}" if base_name else f"base:{spec.name}"
    return spec


# --- loading --------------------------------------------------------------------------------------


def _torch_dtype(dtype: str, device: str):
    import torch

    chosen = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}.get(dtype)
    if chosen is None:
        chosen = torch.bfloat16 if device.startswith("cuda") else torch.float32
    return chosen


def _merged(spec: ModelSpec, torch_dtype):
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(spec.model_path, dtype=torch_dtype)
    if spec.adapter_path:
        from peft import PeftModel

        model = PeftModel.from_pretrained(model, spec.adapter_path).merge_and_unload()
    return model


def load_model(spec: ModelSpec, *, device: str = "cpu", dtype: str = "auto"):
    """(model, tokenizer) ready for batched inference: eval mode, left padding, adapter merged."""
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(spec.tokenizer_path)
    tok.padding_side = "left"
    if tok.pad_token is None:
        tok.pad_token = tok.eos_token
    model = _merged(spec, _torch_dtype(dtype, device))
    model.to(device)
    model.eval()
    return model, tok


def merge_to_dir(spec: ModelSpec, dest: str | Path) -> Path:
    """``spec``'s weights with its adapter merged, as a model directory at ``dest`` (built once, published whole).

    A spec without an adapter is returned as its own model directory.
    """
    import torch

    dest = Path(dest)
    if (dest / "config.json").is_file():
        return dest
    if spec.adapter_path is None:
        return Path(spec.model_path)
    with publish_whole(dest, require="config.json", keep_existing=True) as staging:
        _merged(spec, torch.float32).save_pretrained(staging)
        copy_tokenizer(spec.tokenizer_path, staging)
    return dest
