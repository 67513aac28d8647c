"""Building the model a worker trains: LoRA, QLoRA (bitsandbytes 4-bit) or full, plus DeepSpeed's config.

Also the cheap inspection the pre-flight checks need: the linear modules of an architecture,
built on the meta device so no weights are read.
"""

from __future__ import annotations

import logging
from pathlib import Path

import torch

from clinitune.train.attention import attention_implementation
from clinitune.train.config import TrainConfig
from clinitune.train.loss import transformers_slices_logits

log = logging.getLogger(__name__)

# never adapted / quantised: the output head and its tied embedding
HEAD_NAMES = ("lm_head", "embed_out", "output")


def use_bf16(cfg: TrainConfig) -> bool:
    if cfg.training.precision == "auto":
        return cfg.scaling.use_gpu
    return cfg.training.precision == "bf16"


def linear_module_names(model_dir: str | Path) -> set[str]:
    """Suffix names (q_proj, up_proj, ...) of the linear layers of ``model_dir``'s architecture, on meta."""
    from transformers import AutoConfig, AutoModelForCausalLM

    config = AutoConfig.from_pretrained(str(model_dir))
    with torch.device("meta"):
        model = AutoModelForCausalLM.from_config(config)
    names = set()
    for name, module in model.named_modules():
        if isinstance(module, torch.nn.Linear):
            leaf = name.rsplit(".", 1)[-1]
            if leaf not in HEAD_NAMES:
                names.add(leaf)
    return names


def lora_targets(cfg: TrainConfig) -> list[str] | str:
    t = cfg.lora.target_modules
    return "all-linear" if t == "all-linear" else list(t)


def _apply_liger(model, fused_loss: bool) -> None:
    """Liger's fused RMSNorm, RoPE and SwiGLU; its fused linear cross-entropy only when ``fused_loss``.

    Selective logits (train/loss.py) skip the output head at the ~90 % of positions without a
    target; liger's fused loss replaces the model's forward (no ``logits_to_keep``) and still
    projects every position, chunk by chunk. One or the other, never both.
    """
    from liger_kernel.transformers import _apply_liger_kernel_to_instance

    _apply_liger_kernel_to_instance(model=model, fused_linear_cross_entropy=fused_loss)


def limit_checkpointed_layers(model: torch.nn.Module, n: int | None) -> int:
    """Keep gradient checkpointing on the first ``n`` decoder layers only (``None``: all of them).

    transformers marks every decoder layer (``GradientCheckpointingLayer``) when checkpointing is
    enabled; a layer whose flag is cleared keeps its activations for the backward pass instead of
    recomputing its forward. Returns how many layers are checkpointed.
    """
    from transformers.modeling_layers import GradientCheckpointingLayer

    layers = [m for m in model.modules() if isinstance(m, GradientCheckpointingLayer)]
    for i, layer in enumerate(layers):
        if n is not None and i >= n:
            layer.gradient_checkpointing = False
    checkpointed = sum(bool(layer.gradient_checkpointing) for layer in layers)
    log.info("gradient checkpointing on %d of %d layers", checkpointed, len(layers))
    return checkpointed


def choose_attention(cfg: TrainConfig, model_dir: str, device: torch.device) -> str:
    """``training.attention`` resolved for this device and data (``train.attention``)."""
    from transformers import AutoConfig

    packed_rows = cfg.training.padding_free or cfg.data.packing
    model_config = AutoConfig.from_pretrained(model_dir) if cfg.training.attention != "sdpa" else None
    return attention_implementation(cfg.training.attention, packed_rows, device, model_config)


def build_model(cfg: TrainConfig, model_dir: str, device: torch.device):
    """The trainable model on ``device`` (not yet wrapped in DDP or DeepSpeed)."""
    from transformers import AutoModelForCausalLM

    bf16 = use_bf16(cfg)
    method = cfg.method
    kwargs: dict = {"attn_implementation": choose_attention(cfg, model_dir, device)}
    if method == "qlora":
        from transformers import BitsAndBytesConfig

        kwargs["quantization_config"] = BitsAndBytesConfig(
            load_in_4bit=True,
            bnb_4bit_quant_type=cfg.quantization.quant_type,
            bnb_4bit_use_double_quant=cfg.quantization.double_quant,
            bnb_4bit_compute_dtype=torch.bfloat16 if bf16 else torch.float32,
        )
        kwargs["device_map"] = {"": device}
        kwargs["dtype"] = torch.bfloat16 if bf16 else torch.float32
    elif method == "lora":
        kwargs["dtype"] = torch.bfloat16 if bf16 else torch.float32  # frozen base in bf16 on GPU
    else:
        # full: DeepSpeed keeps fp32 master weights itself; the plain loop keeps fp32 and autocasts
        kwargs["dtype"] = torch.bfloat16 if (bf16 and cfg.deepspeed.enabled) else torch.float32
    model = AutoModelForCausalLM.from_pretrained(model_dir, **kwargs)
    model.config.use_cache = False
    if cfg.training.liger_kernel:
        _apply_liger(model, fused_loss=not (cfg.training.selective_logits and transformers_slices_logits()))
    if method != "qlora":
        model.to(device)
    gc_kwargs = {"use_reentrant": False}
    if method == "full":
        if cfg.training.gradient_checkpointing:
            model.gradient_checkpointing_enable(gradient_checkpointing_kwargs=gc_kwargs)
            limit_checkpointed_layers(model, cfg.training.checkpoint_layers)
        return model

    from peft import LoraConfig, get_peft_model, prepare_model_for_kbit_training

    if method == "qlora":
        model = prepare_model_for_kbit_training(model, use_gradient_checkpointing=cfg.training.gradient_checkpointing,
                                                gradient_checkpointing_kwargs=gc_kwargs)
    elif cfg.training.gradient_checkpointing:
        model.gradient_checkpointing_enable(gradient_checkpointing_kwargs=gc_kwargs)
        model.enable_input_require_grads()
    if cfg.training.gradient_checkpointing:
        limit_checkpointed_layers(model, cfg.training.checkpoint_layers)
    targets, layers = lora_targets(cfg), {}
    if cfg.lora.top_layers is not None:
        n = int(model.config.num_hidden_layers)
        layers = {"layers_to_transform": list(range(max(0, n - cfg.lora.top_layers), n)), "layers_pattern": "layers"}
        if targets == "all-linear":  # PEFT takes a layer subset only with explicit module names
            targets = sorted(linear_module_names(model_dir))
    lcfg = LoraConfig(r=cfg.lora.r, lora_alpha=cfg.lora.alpha, lora_dropout=cfg.lora.dropout,
                      target_modules=targets, bias="none", task_type="CAUSAL_LM", **layers)
    return get_peft_model(model, lcfg)


def trainable_parameters(model) -> list[torch.nn.Parameter]:
    return [p for p in model.parameters() if p.requires_grad]


def deepspeed_config(cfg: TrainConfig) -> dict:
    ds = cfg.deepspeed
    zero: dict = {"stage": ds.stage, "overlap_comm": cfg.scaling.use_gpu, "contiguous_gradients": True}
    if ds.offload_optimizer:
        zero["offload_optimizer"] = {"device": "cpu", "pin_memory": True}
    if ds.offload_params:
        zero["offload_param"] = {"device": "cpu", "pin_memory": True}
    if ds.stage == 3:
        zero["stage3_gather_16bit_weights_on_model_save"] = True
    return {
        "train_micro_batch_size_per_gpu": cfg.training.batch_size,
        "gradient_accumulation_steps": cfg.training.grad_accum,
        "gradient_clipping": cfg.training.max_grad_norm,
        "zero_optimization": zero,
        "bf16": {"enabled": use_bf16(cfg)},
        "zero_allow_untested_optimizer": True,
        "zero_force_ds_cpu_optimizer": False,
        "steps_per_print": 10**9,
        "wall_clock_breakdown": False,
    }


def make_optimizer(cfg: TrainConfig, params: list[torch.nn.Parameter]) -> torch.optim.Optimizer:
    t = cfg.training
    if cfg.deepspeed.enabled and cfg.deepspeed.offload_optimizer:
        from deepspeed.ops.adam import DeepSpeedCPUAdam

        return DeepSpeedCPUAdam(params, lr=t.learning_rate, weight_decay=t.weight_decay)
    return torch.optim.AdamW(params, lr=t.learning_rate, weight_decay=t.weight_decay)


def make_scheduler(cfg: TrainConfig, optimizer, total_steps: int):
    from transformers import get_scheduler

    name = {"cosine": "cosine", "linear": "linear", "constant": "constant_with_warmup"}[cfg.training.lr_scheduler]
    warmup = int(round(cfg.training.warmup_ratio * total_steps))
    return get_scheduler(name, optimizer=optimizer, num_warmup_steps=warmup, num_training_steps=total_steps)
