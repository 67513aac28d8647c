"""Tiny random-init models with a real tokenizer and chat template, built offline in about a second.

Tests and smoke runs need a model that trains in seconds on a laptop CPU yet goes through every
code path a real one does (chat template, label masking, LoRA targets, 4-bit quantisation,
DeepSpeed). ``create_tiny_model`` trains a small byte-level BPE tokenizer on built-in text,
gives it a ChatML chat template, and writes a random-init Llama of the requested size.
"""

from __future__ import annotations

import time
from pathlib import Path

from clinitune.artifacts.publish import publish_whole

CHATML_TEMPLATE = (
    "{% for message in messages %}"
    "{{ '<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n' }}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"
)
SPECIAL_TOKENS = ["<|endoftext|>", "<|im_start|>", "<|im_end|>", "<pad>"]

_CORPUS = [
    "Patient is a 67 year old with hypertension and type 2 diabetes mellitus without complications.",
    "Chief complaint: chest pain. History of present illness: intermittent substernal pressure.",
    "Assessment and plan: continue metformin, lisinopril; follow up in clinic in two weeks.",
    "List the ICD-10-CM codes for this clinical note. Answer with codes separated by commas.",
    "I10, E11.9, J44.9, N18.3, I25.10, E78.5, F32.A, K21.9, M54.5, Z79.4, R07.9, J18.9",
    "Nursing note: vital signs stable, afebrile, tolerating diet, ambulating with assistance.",
    "Radiology impression: no acute cardiopulmonary process. Mild degenerative changes.",
    "Discharge summary: admitted for community acquired pneumonia, treated with antibiotics.",
    "You are a helpful clinical coding assistant. Answer concisely.",
    "user assistant system The quick brown fox jumps over the lazy dog 0123456789 .,;:-()[]",
]


def build_tiny_tokenizer(vocab_size: int = 512):
    """A byte-level BPE tokenizer with ChatML special tokens and chat template (a transformers fast tokenizer)."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=SPECIAL_TOKENS,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False)
    tok.train_from_iterator(_CORPUS * 4, trainer=trainer)
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, bos_token=None, eos_token="<|im_end|>",
                                   pad_token="<pad>", unk_token=None)
    fast.chat_template = CHATML_TEMPLATE
    return fast


def create_tiny_model(out_dir: str | Path, *, hidden_size: int = 64, num_layers: int = 2, num_heads: int = 4,
                      num_kv_heads: int = 2, intermediate_size: int = 128, vocab_size: int = 512,
                      max_positions: int = 2048, seed: int = 0, register_as: str | None = None,
                      home: str | Path | None = None) -> Path:
    """Write a random-init tiny Llama with tokenizer and chat template to ``out_dir``; optionally register it."""
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    out = Path(out_dir)
    tok = build_tiny_tokenizer(vocab_size)
    cfg = LlamaConfig(
        vocab_size=len(tok), hidden_size=hidden_size, intermediate_size=intermediate_size,
        num_hidden_layers=num_layers, num_attention_heads=num_heads, num_key_value_heads=num_kv_heads,
        max_position_embeddings=max_positions, eos_token_id=tok.eos_token_id, pad_token_id=tok.pad_token_id,
        bos_token_id=None, tie_word_embeddings=True,
    )
    torch.manual_seed(seed)
    model = LlamaForCausalLM(cfg)
    with publish_whole(out, require="config.json") as staging:
        model.save_pretrained(staging)
        tok.save_pretrained(staging)
    if register_as:
        from clinitune.models.catalog import ModelEntry, describe_dir, write_entry

        write_entry(ModelEntry(name=register_as, path=str(out.resolve()), source="tiny", kind="tiny",
                               imported_at=time.time(), **describe_dir(out)), home)
    return out
