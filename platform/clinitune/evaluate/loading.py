"""Model references -> what to load: training artifacts, registry versions, base models.

A reference is one of

* a training artifact directory (``clinitune train`` output: ``clinitune_artifact.json`` with an
  ``adapter/`` on a base model, or full weights in ``model/``);
* ``registry:<alias or version>`` (``registry:production``, ``registry:candidate``, ``registry:3``):
  the registered artifact in the MLflow model registry;
* a registered base-model name (``clinitune models list``) or a Hugging Face model directory.

``resolve_ref`` turns one into a :class:`ModelSpec` (paths only, nothing loaded);
``load_model`` loads it for inference (adapters merged into the base for speed).
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

from clinitune.errors import UserError

REGISTRY_PREFIX = "registry:"
DESCRIPTOR = "clinitune_artifact.json"


@dataclass
class ModelSpec:
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


def _read_descriptor(d: Path) -> dict:
    try:
        return json.loads((d / DESCRIPTOR).read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError):
        raise UserError(f"'{d}/{DESCRIPTOR}' cannot be read as JSON.", fix="re-run training to rewrite the artifact.") from None


def _base_path(descriptor: dict, field_name: str) -> str:
    from clinitune.models.registry import resolve_model

    base_path = descriptor.get("base_model_path")
    if base_path and (Path(base_path) / "config.json").is_file():
        return str(base_path)
    base = descriptor.get("base_model")
    if not base:
        raise UserError(f"{field_name}: the artifact names no base model.", fix="re-run training to rewrite the artifact.")
    return str(resolve_model(base))


def spec_from_artifact(d: Path, ref: str, field_name: str = "model") -> ModelSpec:
    desc = _read_descriptor(d)
    name = desc.get("run_name") or d.name
    if desc.get("kind") == "full":
        return ModelSpec(ref, name, "full", str(d / "model"), str(d / "model"), None, str(d), desc)
    adapter = d / "adapter"
    if not (adapter / "adapter_config.json").is_file():
        raise UserError(f"{field_name}: artifact '{d}' has no adapter/adapter_config.json.",
                        fix="pass a complete training artifact (the directory `clinitune train` printed).")
    tok = d / "tokenizer" if (d / "tokenizer").is_dir() else None
    base = _base_path(desc, field_name)
    return ModelSpec(ref, name, "adapter", base, str(tok or base), str(adapter), str(d), desc)


def resolve_ref(ref: str, *, field_name: str = "model", registry=None) -> ModelSpec:
    """A model reference -> ModelSpec; a missing model is a one-line UserError naming ``field_name``."""
    ref = str(ref or "").strip()
    if not ref:
        raise UserError(f"{field_name} is empty.", fix="name a training artifact directory, registry:<alias>, or a base model.")
    if ref.startswith(REGISTRY_PREFIX):
        if registry is None:
            raise UserError(f"{field_name} '{ref}' needs the model registry.", fix="set registry_uri (or run inside a workdir with one).")
        key = ref[len(REGISTRY_PREFIX):]
        info = registry.resolve(key, field_name=field_name)
        spec = resolve_ref(info.local_path, field_name=field_name)
        spec.ref, spec.registry_version = ref, str(info.version)
        spec.name = f"v{info.version}"
        return spec
    p = Path(ref).expanduser()
    if p.is_dir() and (p / DESCRIPTOR).is_file():
        return spec_from_artifact(p.resolve(), ref, field_name)
    from clinitune.models.registry import resolve_model

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
    base = candidate.base_ref
    spec = resolve_ref(base, field_name=field_name)
    base_name = candidate.descriptor.get("base_model")
    spec.name = f"base:{Path(base_name).name}" if base_name else f"base:{spec.name}"
    return spec


def load_model(spec: ModelSpec, *, device: str = "cpu", dtype: str = "auto"):
    """(model, tokenizer) ready for batched inference: eval mode, left padding, adapter merged."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    torch_dtype = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}.get(dtype)
    if torch_dtype is None:
        torch_dtype = torch.bfloat16 if device.startswith("cuda") else torch.float32
    tok = AutoTokenizer.from_pretrained(spec.tokenizer_path)
    tok.padding_side = "left"
    if tok.pad_token is None:
        tok.pad_token = tok.eos_token
    model = AutoModelForCausalLM.from_pretrained(spec.model_path, dtype=torch_dtype)
    if spec.adapter_path:
        from peft import PeftModel

        model = PeftModel.from_pretrained(model, spec.adapter_path).merge_and_unload()
    model.to(device)
    model.eval()
    return model, tok
