"""One base model with many LoRA adapters, for one Serve replica.

The base model's weights are loaded once; PEFT LoRA adapters are injected into it by name and
switched per forward pass, so every adapter shares the base weights. Adapters are loaded and
retired by the replica's LRU (``serve.multiplexed``); an adapter retired while a batch is still
decoding with it is deleted when that batch ends, so eviction never breaks a request in flight.

Not thread-safe by design: the replica runs every engine call on one worker thread, which also
makes the "activate adapter, then forward" sequence atomic.
"""

from __future__ import annotations

import itertools
import json
import logging
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator, Sequence

import torch

from clinitune.artifacts.model import ADAPTER_DIR, find_adapter
from clinitune.errors import UserError
from clinitune.serve.decoding import BatchDecoder, SamplingParams

log = logging.getLogger(__name__)

_UNSET = object()  # the active adapter is unknown (PEFT changed it): activate explicitly before use
_DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}


class AdapterLoadError(Exception):
    """An adapter's files cannot be loaded onto this base model (message names the adapter, not data)."""


def adapter_dir(path: str | Path) -> Path:
    """The PEFT adapter directory at ``path``: the directory itself, or its ``adapter/`` subdirectory."""
    p = Path(path)
    found = find_adapter(p)
    if found is None:
        raise AdapterLoadError(f"no PEFT adapter (adapter_config.json) at '{p}' or '{p / ADAPTER_DIR}'")
    return found


@dataclass
class _Adapter:
    key: str
    internal: str
    in_use: int = 0
    retired: bool = False


class GenerationEngine:
    """Tokenizer + base model + LoRA adapters; builds :class:`BatchDecoder` s."""

    def __init__(self, model_dir: str | Path, *, dtype: str = "float32", device: str = "auto",
                 threads: int | None = None, max_context_tokens: int | None = None):
        from transformers import AutoModelForCausalLM, AutoTokenizer

        if threads:
            torch.set_num_threads(threads)
        model_dir = Path(model_dir)
        if not (model_dir / "config.json").is_file():
            raise UserError(f"base model directory '{model_dir}' has no config.json.",
                            fix="point model.base at a Hugging Face model directory or a name from 'clinitune models list'.")
        self.device = torch.device("cuda" if device == "auto" and torch.cuda.is_available() else
                                   ("cpu" if device == "auto" else device))
        self.tokenizer = AutoTokenizer.from_pretrained(model_dir)
        self.model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=_DTYPES[dtype]).to(self.device)
        self.model.eval()
        self._peft = None  # the PeftModel wrapping self.model once an adapter is loaded
        self._adapters: dict[str, _Adapter] = {}  # internal name -> adapter
        self._active: object = _UNSET
        self._names = itertools.count()
        cfg = self.model.config
        self.context_tokens = int(max_context_tokens or getattr(cfg, "max_position_embeddings", 2048))
        eos: set[int] = set()
        for source in (getattr(self.model.generation_config, "eos_token_id", None), self.tokenizer.eos_token_id):
            if isinstance(source, int):
                eos.add(source)
            elif source:
                eos.update(int(x) for x in source)
        self.eos_ids = eos
        pad = self.tokenizer.pad_token_id
        self.pad_id = int(pad if pad is not None else (min(eos) if eos else 0))

    # -- prompts -------------------------------------------------------------------------------
    def encode_chat(self, messages: list[dict[str, str]]) -> list[int]:
        tok = self.tokenizer
        if getattr(tok, "chat_template", None):
            text = tok.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
        else:  # a base model without a chat template: a plain transcript
            text = "".join(f"{m['role']}: {m['content']}\n" for m in messages) + "assistant:"
        return list(tok(text, add_special_tokens=False)["input_ids"])

    def encode_text(self, text: str) -> list[int]:
        return list(self.tokenizer(text, add_special_tokens=True)["input_ids"])

    # -- adapters ------------------------------------------------------------------------------
    def load_adapter(self, key: str, path: str | Path) -> str:
        """Load the adapter at ``path`` for multiplexed id ``key``; returns its internal name."""
        from peft import PeftModel

        directory = adapter_dir(path)
        try:
            cfg = json.loads((directory / "adapter_config.json").read_text())
        except (OSError, json.JSONDecodeError) as err:
            raise AdapterLoadError(f"adapter '{key}': unreadable adapter_config.json ({type(err).__name__})") from None
        if cfg.get("peft_type", "LORA") != "LORA":
            raise AdapterLoadError(f"adapter '{key}' is a {cfg.get('peft_type')} adapter; only LoRA adapters are served")
        internal = f"a{next(self._names)}"
        try:
            if self._peft is None:
                self._peft = PeftModel.from_pretrained(self.model, str(directory), adapter_name=internal, is_trainable=False)
            else:
                self._peft.load_adapter(str(directory), adapter_name=internal, is_trainable=False)
        except Exception as err:  # wrong base, missing weights, bad shapes: one clear line
            raise AdapterLoadError(f"adapter '{key}' cannot be loaded onto this base model: {type(err).__name__}: "
                                   f"{str(err).splitlines()[0][:200] if str(err) else ''}") from None
        self._adapters[internal] = _Adapter(key, internal)
        self._active = _UNSET  # PEFT switched adapters: the next forward activates explicitly
        log.info("loaded adapter %s as %s", key, internal)
        return internal

    def retire_adapter(self, internal: str) -> None:
        """Forget an adapter (LRU eviction); deleted now, or when the last batch using it ends."""
        a = self._adapters.get(internal)
        if a is None:
            return
        a.retired = True
        if a.in_use == 0:
            self._delete(a)

    def _delete(self, a: _Adapter) -> None:
        self._adapters.pop(a.internal, None)
        self._active = _UNSET
        self._peft.delete_adapter(a.internal)
        log.info("unloaded adapter %s", a.key)

    @property
    def loaded(self) -> list[str]:
        return sorted(a.key for a in self._adapters.values() if not a.retired)

    def _activate(self, internal: str | None) -> None:
        if self._peft is None or internal == self._active:
            return
        lora = self._peft.base_model
        if internal is None:
            lora.disable_adapter_layers()
        else:
            lora.enable_adapter_layers()
            self._peft.set_adapter(internal)
        self._active = internal

    @contextmanager
    def _using(self, internal: str | None) -> Iterator[None]:
        self._activate(internal)
        yield

    # -- decoding ------------------------------------------------------------------------------
    def decoder(self, prompts: Sequence[Sequence[int]], params: Sequence[SamplingParams],
                adapter: str | None) -> BatchDecoder:
        """A decoder for one batch with ``adapter`` (internal name, None = base); call :meth:`release` after."""
        if adapter is not None:
            if adapter not in self._adapters:
                raise AdapterLoadError(f"adapter {adapter} is not loaded")
            self._adapters[adapter].in_use += 1
        return BatchDecoder(self.model, self.tokenizer, prompts, params, eos_ids=self.eos_ids, pad_id=self.pad_id,
                            device=self.device, forward_context=lambda: self._using(adapter))

    def release(self, adapter: str | None) -> None:
        a = self._adapters.get(adapter) if adapter is not None else None
        if a is not None:
            a.in_use -= 1
            if a.retired and a.in_use == 0:
                self._delete(a)

    def score(self, prompts: Sequence[Sequence[int]], top_k: int, adapter: str | None = None) -> list[Any]:
        """Each prompt token's log-probability given the tokens before it, with ``top_k`` alternatives
        (``echo``): ``clinitune.models.loglik.token_logprobs``, the scorer benchmark evaluation uses."""
        from clinitune.models.loglik import token_logprobs

        if adapter is not None:
            if adapter not in self._adapters:
                raise AdapterLoadError(f"adapter {adapter} is not loaded")
            self._adapters[adapter].in_use += 1
        try:
            return token_logprobs(self.model, prompts, top_k=top_k, pad_id=self.pad_id, device=str(self.device),
                                  forward_context=lambda: self._using(adapter))
        finally:
            self.release(adapter)

    def generate(self, prompts: Sequence[Sequence[int]], params: Sequence[SamplingParams],
                 adapter: str | None = None) -> list[Any]:
        """Decode a batch to the end (in-process use: tests, baselines, offline evaluation)."""
        dec = self.decoder(prompts, params, adapter)
        try:
            return dec.run()
        finally:
            self.release(adapter)
