"""Serving fixtures: a tiny random-init Llama and two LoRA adapters with known behaviour.

The adapters are trained for a few seconds to answer every prompt with one fixed sentence, so
tests can tell which adapter answered and whether the PHI guard worked:

* ``coder`` answers "The code is E11.9 for type 2 diabetes."
* ``leaky`` answers with planted PHI (a name, an MRN and a phone number) — a fine-tune that
  memorised PHI, the case the output guard exists for.
"""

from __future__ import annotations

from pathlib import Path

import pytest

CODER_TEXT = "The code is E11.9 for type 2 diabetes."
LEAKY_TEXT = "Patient Maria Gonzalez, MRN 4829105, phone 617-555-0142."
LEAKY_VALUES = ("Gonzalez", "4829105", "617-555-0142")
# Prompts the tests send, plus a few others: a model this small memorises rather than generalises.
_PROMPTS = ["hello", "hi", "what is the code?", "what is the code for diabetes", "stream me", "keep going", "x",
            "tell me about hypertension please", "Patient John Smith called about chest pain",
            "Patient John Smith, MRN 7654321, seen at Boston General on 03/14/2024. What is the code?"]


def build_tiny_model(out: Path) -> Path:
    """hidden 32, 2 layers; a wider init than the default so a LoRA can make its logits decisive quickly."""
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    from clinitune.models.tiny import build_tiny_tokenizer

    tok = build_tiny_tokenizer(512)
    cfg = LlamaConfig(vocab_size=len(tok), hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=4,
                      num_key_value_heads=2, max_position_embeddings=1024, eos_token_id=tok.eos_token_id,
                      pad_token_id=tok.pad_token_id, bos_token_id=None, tie_word_embeddings=True, initializer_range=0.2)
    torch.manual_seed(0)
    model = LlamaForCausalLM(cfg)
    out.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(out)
    tok.save_pretrained(out)
    return out


def train_adapter(model_dir: Path, target: str, out: Path, *, seed: int, steps: int = 200) -> Path:
    """A LoRA adapter that answers every chat prompt with ``target`` (greedy)."""
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM, AutoTokenizer

    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # tiny matrices: threads only add overhead
    try:
        torch.manual_seed(seed)
        tok = AutoTokenizer.from_pretrained(model_dir)
        model = AutoModelForCausalLM.from_pretrained(model_dir)
        peft = get_peft_model(model, LoraConfig(r=8, lora_alpha=32, lora_dropout=0.0,
                                                target_modules=["q_proj", "k_proj", "v_proj", "o_proj", "up_proj", "down_proj"]))
        rows = []
        for p in _PROMPTS:
            pre = tok.apply_chat_template([{"role": "user", "content": p}], tokenize=False, add_generation_prompt=True)
            a = tok(pre, add_special_tokens=False)["input_ids"]
            b = tok(target + "<|im_end|>", add_special_tokens=False)["input_ids"]
            rows.append((a, b))
        width = max(len(a) + len(b) for a, b in rows)
        pad = tok.pad_token_id
        ids = torch.tensor([a + b + [pad] * (width - len(a) - len(b)) for a, b in rows])
        mask = torch.tensor([[1] * (len(a) + len(b)) + [0] * (width - len(a) - len(b)) for a, b in rows])
        labels = torch.tensor([[-100] * len(a) + b + [-100] * (width - len(a) - len(b)) for a, b in rows])
        opt = torch.optim.Adam([p for p in peft.parameters() if p.requires_grad], lr=1e-2)
        for _ in range(steps):
            loss = peft(input_ids=ids, attention_mask=mask, labels=labels).loss
            loss.backward()
            opt.step()
            opt.zero_grad()
        peft.save_pretrained(out)
    finally:
        torch.set_num_threads(threads)
    return out


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory) -> Path:
    return build_tiny_model(tmp_path_factory.mktemp("tiny-llama"))


@pytest.fixture(scope="session")
def adapters(tiny_model, tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("adapters")
    return {
        "coder": train_adapter(tiny_model, CODER_TEXT, root / "coder", seed=1),
        "leaky": train_adapter(tiny_model, LEAKY_TEXT, root / "leaky", seed=2),
    }


@pytest.fixture(scope="session")
def adapter_texts() -> dict[str, object]:
    """What each adapter answers, and the PHI values the leaky one plants."""
    return {"coder": CODER_TEXT, "leaky": LEAKY_TEXT, "leaky_values": LEAKY_VALUES}
