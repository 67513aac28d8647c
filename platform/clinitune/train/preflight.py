"""Checks that run on the driver before any cluster time is spent; each failure is one UserError line.

Model path, chat template, LoRA target modules, QLoRA quantisability, DeepSpeed/liger
availability, early stopping without validation data, workers versus cluster resources, and
(once the dataset is built) enough examples for one optimizer step.
"""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

from clinitune.errors import ConfigError, UserError
from clinitune.train.config import TrainConfig


def check_model(cfg: TrainConfig) -> Path:
    """Resolve the base model and check its tokenizer, targets and quantisability."""
    from clinitune.data.build import check_tokenizer
    from clinitune.models.catalog import resolve_model
    from clinitune.train.model_setup import linear_module_names

    model_dir = resolve_model(cfg.model)
    check_tokenizer(model_dir)
    hf_config = json.loads((model_dir / "config.json").read_text(encoding="utf-8"))
    if cfg.method in ("lora", "qlora"):
        linears = linear_module_names(model_dir)
        if cfg.lora.target_modules != "all-linear":
            missing = [m for m in cfg.lora.target_modules if m not in linears]
            if missing:
                raise ConfigError(
                    f"lora.target_modules: {', '.join(missing)} not found among the linear layers of model '{cfg.model}'.",
                    fix=f"use some of: {', '.join(sorted(linears))}, or 'all-linear'.",
                )
        n_layers = hf_config.get("num_hidden_layers")
        if cfg.lora.top_layers is not None and isinstance(n_layers, int) and cfg.lora.top_layers > n_layers:
            raise ConfigError(f"lora.top_layers is {cfg.lora.top_layers} but model '{cfg.model}' has {n_layers} layers.",
                              fix=f"use at most {n_layers}, or null for every layer.")
        if cfg.method == "qlora":
            check_quantisable(cfg, hf_config, linears)
    return model_dir


def check_quantisable(cfg: TrainConfig, hf_config: dict, linears: set[str]) -> None:
    if importlib.util.find_spec("bitsandbytes") is None:
        raise UserError("method qlora needs the bitsandbytes package, which is not installed.",
                        fix="pip install 'bitsandbytes>=0.45', or use method: lora.")
    existing = (hf_config.get("quantization_config") or {}).get("quant_method")
    if existing:
        raise UserError(
            f"method qlora: model '{cfg.model}' is already quantised ({existing}); bitsandbytes cannot quantise it again.",
            fix="point model at the unquantised (fp16/bf16/fp32) weights, or use method: lora on this model.",
        )
    if not linears:
        raise UserError(f"method qlora: model '{cfg.model}' has no linear layers bitsandbytes can quantise.",
                        fix="use method: lora or full for this architecture.")
    if not cfg.scaling.use_gpu:
        import bitsandbytes

        major, minor = (int(x) for x in bitsandbytes.__version__.split(".")[:2])
        if (major, minor) < (0, 45):
            raise UserError(f"method qlora on CPU needs bitsandbytes >= 0.45 (installed {bitsandbytes.__version__}).",
                            fix="pip install -U bitsandbytes, or set scaling.use_gpu: true.")


def check_options(cfg: TrainConfig) -> None:
    if cfg.deepspeed.enabled and importlib.util.find_spec("deepspeed") is None:
        raise UserError("deepspeed.enabled is true but the deepspeed package is not installed.",
                        fix="pip install --no-build-isolation deepspeed, or set deepspeed.enabled: false.")
    if (cfg.deepspeed.offload_optimizer or cfg.deepspeed.offload_params) and not cfg.scaling.use_gpu:
        raise ConfigError("deepspeed offload moves GPU state to CPU memory, but scaling.use_gpu is false.",
                          fix="set scaling.use_gpu: true, or set deepspeed.offload_optimizer/offload_params: false on CPU.")
    if cfg.training.liger_kernel:
        if not cfg.scaling.use_gpu:
            raise ConfigError("training.liger_kernel needs GPUs (Triton kernels), but scaling.use_gpu is false.",
                              fix="set training.liger_kernel: false on CPU.")
        if importlib.util.find_spec("liger_kernel") is None:
            raise UserError("training.liger_kernel is true but the liger-kernel package is not installed.",
                            fix="pip install liger-kernel, or set training.liger_kernel: false.")
    if cfg.training.checkpoint_layers is not None and not cfg.training.gradient_checkpointing:
        raise ConfigError(f"training.checkpoint_layers is {cfg.training.checkpoint_layers}, but gradient_checkpointing is off.",
                          fix="set training.gradient_checkpointing: true, or remove checkpoint_layers.")
    if cfg.training.precision == "bf16" and not cfg.scaling.use_gpu and cfg.method == "qlora":
        raise ConfigError("training.precision bf16 with qlora on CPU is not supported by bitsandbytes' CPU kernels.",
                          fix="set training.precision: auto (fp32 on CPU).")
    if cfg.eval.early_stopping_patience and "validation" not in cfg.data.splits:
        raise ConfigError("eval.early_stopping_patience needs validation loss, but data.splits has no 'validation'.",
                          fix="add validation to data.splits or set eval.early_stopping_patience: null.")
    if cfg.eval.early_stopping_patience and cfg.eval.every_n_steps is None:
        raise ConfigError("eval.early_stopping_patience needs periodic validation, but eval.every_n_steps is null.",
                          fix="set eval.every_n_steps (e.g. 50).")


def check_resources(cfg: TrainConfig) -> None:
    """Workers must fit the cluster: in total and, for one worker, on some node."""
    import ray

    s = cfg.scaling
    need_cpu = s.num_workers * s.cpus_per_worker
    need_gpu = s.num_workers * s.gpus_per_worker if s.use_gpu else 0.0
    total = ray.cluster_resources()
    have_cpu, have_gpu = total.get("CPU", 0.0), total.get("GPU", 0.0)
    if s.use_gpu and have_gpu == 0:
        raise UserError("scaling.use_gpu is true but the Ray cluster has no GPUs.",
                        fix="set scaling.use_gpu: false to train on CPU, or connect to a cluster with GPU nodes (scaling.ray_address).")
    if need_gpu > have_gpu:
        raise UserError(
            f"scaling.num_workers {s.num_workers} x {s.gpus_per_worker} GPU needs {need_gpu:g} GPUs; the cluster has {have_gpu:g}.",
            fix=f"set scaling.num_workers to at most {int(have_gpu // s.gpus_per_worker)} or add GPU nodes.",
        )
    if need_cpu > have_cpu:
        raise UserError(
            f"scaling.num_workers {s.num_workers} x {s.cpus_per_worker:g} CPU needs {need_cpu:g} CPUs; the cluster has {have_cpu:g}.",
            fix=f"set scaling.num_workers to at most {int(have_cpu // s.cpus_per_worker)}, lower scaling.cpus_per_worker, or add nodes.",
        )
    nodes = [n.get("Resources", {}) for n in ray.nodes() if n.get("Alive")]
    if nodes and not any(n.get("CPU", 0) >= s.cpus_per_worker and (not s.use_gpu or n.get("GPU", 0) >= s.gpus_per_worker)
                         for n in nodes):
        raise UserError(f"no node can hold one worker ({s.cpus_per_worker:g} CPU{', %g GPU' % s.gpus_per_worker if s.use_gpu else ''}).",
                        fix="lower scaling.cpus_per_worker / gpus_per_worker or add a larger node.")


def check_dataset(cfg: TrainConfig, manifest: dict) -> None:
    from clinitune.train.loop import plan_steps

    train = manifest["splits"]["train"]
    n = train["sequences"]
    _, steps_per_epoch, total = plan_steps(cfg, n, cfg.scaling.num_workers)
    if steps_per_epoch == 0:
        per_step = cfg.training.batch_size * cfg.training.grad_accum * cfg.scaling.num_workers
        raise UserError(
            f"the training split has {n} sequences, fewer than one optimizer step needs "
            f"(training.batch_size x training.grad_accum x scaling.num_workers = {per_step}).",
            fix="add training data, or lower training.batch_size, training.grad_accum or scaling.num_workers.",
        )
    if cfg.eval.early_stopping_patience and manifest["splits"].get("validation", {}).get("sequences", 0) < cfg.scaling.num_workers:
        raise UserError("eval.early_stopping_patience is set but the validation split has fewer sequences than workers.",
                        fix="add validation data or set eval.early_stopping_patience: null.")
