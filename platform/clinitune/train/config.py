"""The fine-tuning job's typed config (``jobs/configs/train.yaml`` documents every key)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from clinitune.config import ExecutionSettings, StrictModel
from clinitune.data.config import DataConfig
from clinitune.errors import ConfigError


class LoraConfig(StrictModel):
    """LoRA adapter shape (also used by QLoRA)."""

    r: int = Field(16, ge=1, le=1024, description="Adapter rank.")
    alpha: float = Field(32, gt=0, description="Scaling numerator: the update is scaled by alpha / r.")
    dropout: float = Field(0.05, ge=0, lt=1, description="Dropout on the adapter input.")
    target_modules: list[str] | Literal["all-linear"] = Field("all-linear", description="Module names (suffixes such as q_proj, v_proj) that get adapters, or 'all-linear' for every linear layer except the output head.")
    top_layers: int | None = Field(None, ge=1, description="Put adapters only on the top N transformer layers (null = all). Back-propagation stops below them: faster steps, and the lower layers that hold general skills stay as they were.")


class QuantConfig(StrictModel):
    """bitsandbytes 4-bit quantisation of the frozen base (QLoRA)."""

    quant_type: Literal["nf4", "fp4"] = Field("nf4", description="4-bit data type: NF4 (QLoRA paper) or FP4.")
    double_quant: bool = Field(True, description="Quantise the quantisation constants too (saves ~0.4 bits per parameter).")


class DeepSpeedConfig(StrictModel):
    """DeepSpeed ZeRO for full fine-tuning."""

    enabled: bool = Field(False, description="Run full fine-tuning under DeepSpeed ZeRO (method: full only).")
    stage: Literal[2, 3] = Field(2, description="ZeRO stage: 2 shards optimizer state and gradients, 3 also shards parameters.")
    offload_optimizer: bool = Field(False, description="Keep optimizer state in CPU memory (saves GPU memory, costs speed).")
    offload_params: bool = Field(False, description="Keep parameters in CPU memory (ZeRO-3 only).")


class TrainingConfig(StrictModel):
    """Optimisation: epochs, batches, learning rate schedule and precision."""

    epochs: int = Field(1, ge=1, le=1000, description="Passes over the training split.")
    max_steps: int | None = Field(None, ge=1, description="Stop after this many optimizer steps in total (null = run every epoch to the end).")
    batch_size: int = Field(4, ge=1, description="Sequences per worker per micro-batch.")
    grad_accum: int = Field(1, ge=1, description="Micro-batches accumulated per optimizer step (global batch = batch_size x grad_accum x workers).")
    learning_rate: float = Field(2e-4, gt=0, le=1, description="Peak learning rate (AdamW).")
    weight_decay: float = Field(0.0, ge=0, description="AdamW weight decay.")
    warmup_ratio: float = Field(0.03, ge=0, lt=1, description="Fraction of steps with linear warm-up from 0 to the peak learning rate.")
    lr_scheduler: Literal["cosine", "linear", "constant"] = Field("cosine", description="Decay after warm-up.")
    max_grad_norm: float = Field(1.0, ge=0, description="Gradient clipping norm (0 turns clipping off).")
    precision: Literal["auto", "bf16", "fp32"] = Field("auto", description="'auto' = bf16 on GPU, fp32 on CPU.")
    gradient_checkpointing: bool = Field(False, description="Recompute activations in the backward pass (less memory, ~30% slower).")
    checkpoint_layers: int | None = Field(None, ge=0, description="With gradient_checkpointing: checkpoint only the first N decoder layers (null = all). Each layer left out keeps its activations (about 1.5 GiB per layer for Llama-3-8B at batch 4 x 2048) and skips its recompute: spend spare GPU memory on speed.")
    selective_logits: bool = Field(True, description="Project onto the vocabulary only the positions that carry a loss target (the prompt is masked anyway): the same loss and gradients with less output-head compute and memory. Needs a model whose forward takes logits_to_keep (transformers >= 5); others take the full-logits path. With liger_kernel it replaces liger's fused linear cross-entropy (which still projects every position).")
    liger_kernel: bool = Field(False, description="Use liger-kernel fused RMSNorm/RoPE/SwiGLU kernels, and its fused linear cross-entropy when selective_logits is off (GPU only, needs the liger-kernel package).")
    padding_free: bool = Field(False, description="Concatenate each micro-batch's batch_size rows into one row with no padding (padding-free packing; combine with data.packing for full rows). Position ids restart at every example and attention stays within it; the loss equals unpacked training. Tokens per micro-batch then vary with the examples' lengths.")
    attention: Literal["auto", "sdpa", "flex_attention"] = Field("auto", description="Attention kernel. 'auto': flex attention with a per-example document mask when rows are packed (data.packing or padding_free) and the device can train with it (CUDA), else SDPA. 'flex_attention' asks for it and falls back to SDPA with a block-diagonal causal mask, with one log line, where it cannot train (CPU has no flex backward). 'sdpa': always SDPA.")
    shuffle_buffer: int = Field(256, ge=0, description="Rows in each worker's local shuffle buffer (0 = no shuffle; order then follows the dataset).")
    seed: int = Field(0, description="Seed for initialisation, adapter weights and shuffling.")
    log_every_n_steps: int = Field(10, ge=1, description="Report training loss, tokens/s, memory and learning rate every N optimizer steps.")


class ValidationConfig(StrictModel):
    """Validation loss and early stopping."""

    every_n_steps: int | None = Field(50, ge=1, description="Compute validation loss every N optimizer steps (null = only at the end).")
    max_batches: int | None = Field(None, ge=1, description="Cap on validation micro-batches per worker per evaluation (null = the whole split).")
    early_stopping_patience: int | None = Field(None, ge=1, description="Stop when validation loss has not improved for this many evaluations (null = never).")
    early_stopping_min_delta: float = Field(0.0, ge=0, description="Smallest decrease in validation loss that counts as an improvement.")


class CheckpointSettings(StrictModel):
    """Where and how often training state is saved."""

    every_n_steps: int = Field(100, ge=1, description="Save a checkpoint every N optimizer steps (and always at the end).")
    num_to_keep: int | None = Field(2, ge=1, description="Checkpoints kept in storage (oldest deleted first; null keeps all).")
    storage_path: str | None = Field(None, description="Local directory or URI (s3://, gs://, abfs://...) for checkpoints; null = <workdir>/runs. Must be shared storage on a multi-node cluster.")
    run_name: str | None = Field(None, description="Name of the run under storage_path; the same name resumes from its last checkpoint. null = derived from the config's content hash, so re-running the same command resumes.")


class ScalingSettings(ExecutionSettings):
    """Ray Train workers and their resources."""

    num_workers: int = Field(1, ge=1, description="Training workers (one process each; data parallel).")
    use_gpu: bool = Field(False, description="Give each worker a GPU (CUDA, NCCL); false trains on CPU with gloo.")
    cpus_per_worker: float = Field(1.0, gt=0, description="CPUs reserved per worker. On a small machine use a fraction (e.g. 0.5) so Ray Data keeps CPUs to stream batches.")
    gpus_per_worker: float = Field(1.0, gt=0, description="GPUs per worker when use_gpu is true.")
    threads_per_worker: int | None = Field(None, ge=1, description="PyTorch CPU threads per worker; null = cpus_per_worker rounded up. Raise it when workers reserve a fraction of a CPU but the machine has idle cores.")
    max_failures: int = Field(3, ge=-1, description="Worker-group restarts from the last checkpoint after a worker dies (-1 = unlimited).")


class TrackingConfig(StrictModel):
    """MLflow experiment tracking."""

    enabled: bool = Field(True, description="Log params, metrics and the artifact to MLflow.")
    tracking_uri: str | None = Field(None, description="MLflow tracking URI; null = sqlite:///<workdir>/mlflow.db (a file, no server).")
    experiment: str = Field("clinitune-finetune", description="MLflow experiment name.")


class TrainConfig(StrictModel):
    """Turn a built dataset and a base model into an adapter or fine-tuned weights."""

    model: str = Field("smollm2-135m-instruct", description="Base model: a registered name (clinitune models list), the embedded default 'smollm2-135m-instruct', or a local Hugging Face directory.")
    method: Literal["lora", "qlora", "full"] = Field("lora", description="lora: adapters on a frozen base; qlora: adapters on a 4-bit base; full: every weight (optionally under DeepSpeed).")
    data: DataConfig = Field(..., description="How the training data is built (see jobs/configs/data.yaml); data.model is ignored: the training model's tokenizer is used.")
    lora: LoraConfig = Field(default_factory=LoraConfig, description="Adapter settings for lora and qlora.")
    quantization: QuantConfig = Field(default_factory=QuantConfig, description="4-bit settings for qlora.")
    deepspeed: DeepSpeedConfig = Field(default_factory=DeepSpeedConfig, description="DeepSpeed ZeRO settings for full fine-tuning.")
    training: TrainingConfig = Field(default_factory=TrainingConfig, description="Optimisation settings.")
    eval: ValidationConfig = Field(default_factory=ValidationConfig, description="Validation loss and early stopping during training (the evaluation job is `clinitune evaluate`).")
    checkpoint: CheckpointSettings = Field(default_factory=CheckpointSettings, description="Checkpoint storage and frequency.")
    scaling: ScalingSettings = Field(default_factory=ScalingSettings, description="Workers and resources.")
    tracking: TrackingConfig = Field(default_factory=TrackingConfig, description="MLflow tracking.")
    workdir: str = Field("work", description="Working directory for run storage, the MLflow database and outputs when not set elsewhere.")
    output_dir: str | None = Field(None, description="Where the model artifact is written; null = <workdir>/models/<run_name>.")

    @model_validator(mode="after")
    def _consistent(self) -> "TrainConfig":
        if self.deepspeed.enabled and self.method != "full":
            raise ConfigError(f"deepspeed.enabled is true but method is '{self.method}'.",
                              fix="use method: full with DeepSpeed, or set deepspeed.enabled: false for LoRA/QLoRA.")
        if self.deepspeed.offload_params and self.deepspeed.stage != 3:
            raise ConfigError("deepspeed.offload_params needs ZeRO stage 3.", fix="set deepspeed.stage: 3 or offload_params: false.")
        return self
