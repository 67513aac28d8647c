"""The model a pipeline run trains from: the current production model, or the base model.

A production LoRA adapter is merged into its base once and saved as a plain Hugging Face
directory under ``<workdir>/pipeline/bases/<model>-v<version>/``; the new adapter is trained on
top of it, so a candidate starts from everything production learned. The merged directory is
kept (the candidate's artifact names it as its base model). A fully fine-tuned production
version is used as is.
"""

from __future__ import annotations

import shutil
import uuid
from pathlib import Path

from clinitune.evaluate.loading import ModelSpec

TOKENIZER_FILES = ("tokenizer.json", "tokenizer.model", "tokenizer_config.json", "special_tokens_map.json",
                   "chat_template.jinja", "chat_template.json", "vocab.json", "merges.txt")


def merged_base(spec: ModelSpec, dest: str | Path) -> Path:
    """``spec``'s weights with its adapter merged, as a model directory at ``dest`` (built once, published whole)."""
    dest = Path(dest)
    if (dest / "config.json").is_file():
        return dest
    if spec.adapter_path is None:
        return Path(spec.model_path)
    import torch
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    staging = dest.parent / f".{dest.name}.staging-{uuid.uuid4().hex[:8]}"
    try:
        model = AutoModelForCausalLM.from_pretrained(spec.model_path, dtype=torch.float32)
        model = PeftModel.from_pretrained(model, spec.adapter_path).merge_and_unload()
        model.save_pretrained(staging)
        tok_dir = Path(spec.tokenizer_path)
        for name in TOKENIZER_FILES:
            if (tok_dir / name).is_file():
                shutil.copy2(tok_dir / name, staging / name)
        dest.parent.mkdir(parents=True, exist_ok=True)
        staging.rename(dest)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return dest
