"""The fine-tuning recipe each Ray Train worker runs, written out plainly with one method per phase.

``train_loop_per_worker`` runs :class:`TrainRecipe` for every method: ``setup_model`` builds the
model (``model_setup.build_model``), ``setup_optimizer`` the optimizer and schedule, wrapped in DDP
when there are several workers or handed to ``deepspeed.initialize``; ``load_checkpoint`` resumes;
``setup_data`` takes this worker's streaming shards (Ray Data). Then, per optimizer step,
``train_step``:

1. takes ``grad_accum`` micro-batches from the shard (``prepare_batch``: padded rows, or with
   ``training.padding_free`` one row of all their examples, attention kept per example),
2. normalises the loss by the target tokens of the whole accumulation window,
3. steps the optimizer and the learning-rate schedule;

and ``after_step`` every ``log_every_n_steps`` reports loss, tokens/s, peak memory and learning
rate, every ``eval.every_n_steps`` runs ``validate`` (all workers, summed) and applies early
stopping, every ``checkpoint.every_n_steps`` saves a checkpoint with the data position
(``save_checkpoint``, ``report``). ``finish`` validates once more and reports the final checkpoint.

A restarted worker group (a worker killed, a node lost, or the same job submitted again) starts
from ``ray.train.get_checkpoint()``: weights, optimizer, schedule, step, epoch and the number of
micro-batches already consumed in the epoch, which it skips.
"""

from __future__ import annotations

import contextlib
import json
import logging
import math
import os
import resource
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from clinitune.artifacts.publish import write_whole
from clinitune.train import state as ckpt
from clinitune.train.attention import flatten_batch
from clinitune.train.config import TrainConfig
from clinitune.train.loss import IGNORE_INDEX, causal_lm_loss, supports_selective_logits
from clinitune.train.model_setup import (build_model, deepspeed_config, make_optimizer, make_scheduler,
                                         trainable_parameters, use_bf16)

log = logging.getLogger(__name__)


# --- batches ------------------------------------------------------------------------------------


def collate(batch: dict, pad_id: int, device: torch.device, multiple_of: int = 1) -> dict:
    """Pad a numpy batch (ragged input_ids/labels/lengths) into tensors; position ids restart per example.

    When a row packs several examples, padding forms its own segment of positions, so with
    ``attention_mask=None`` transformers builds a block-diagonal causal mask: packed examples and
    padding never attend to each other, and each example's first label is masked so that no example
    is trained to predict the next one's first token. When no row is packed, positions simply run on through the
    right padding: causal attention already keeps real tokens from seeing it, and transformers takes
    its plain causal path instead of materialising a mask (~8 % faster on CPU).
    """
    rows = len(batch["input_ids"])
    longest = max(len(x) for x in batch["input_ids"])
    width = int(math.ceil(longest / multiple_of) * multiple_of)
    ids = np.full((rows, width), pad_id, dtype=np.int64)
    labels = np.full((rows, width), IGNORE_INDEX, dtype=np.int64)
    pos = np.zeros((rows, width), dtype=np.int64)
    packed = any(len(batch["lengths"][r]) > 1 for r in range(rows))
    tokens = 0
    for r in range(rows):
        x, y = batch["input_ids"][r], batch["labels"][r]
        n = len(x)
        ids[r, :n] = x
        labels[r, :n] = y
        tokens += n
        if not packed:
            pos[r] = np.arange(width)
            continue
        off = 0
        for length in list(batch["lengths"][r]) + ([width - n] if width > n else []):
            if length:
                pos[r, off: off + length] = np.arange(length)
                labels[r, off] = IGNORE_INDEX  # the token before it is another example's: never a target across
            off += length
    return {
        "input_ids": torch.from_numpy(ids).to(device),
        "labels": torch.from_numpy(labels).to(device),
        "position_ids": torch.from_numpy(pos).to(device),
        "tokens": tokens,
        "targets": int((labels[:, 1:] != IGNORE_INDEX).sum()),
    }


def plan_steps(cfg: TrainConfig, train_sequences: int, world: int) -> tuple[int, int, int]:
    """(micro-batches per epoch per worker, optimizer steps per epoch, total steps); equal on every worker."""
    per_worker = train_sequences // world
    micro = per_worker // cfg.training.batch_size
    steps_per_epoch = micro // cfg.training.grad_accum
    total = steps_per_epoch * cfg.training.epochs
    if cfg.training.max_steps is not None:
        total = min(total, cfg.training.max_steps)
    return micro, steps_per_epoch, total


# --- metrics ------------------------------------------------------------------------------------


def peak_memory_gib(device: torch.device) -> float:
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2**30
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20  # KiB on Linux -> GiB (process peak RSS)


def all_sum(values: list[float], device: torch.device) -> list[float]:
    import torch.distributed as dist

    t = torch.tensor(values, dtype=torch.float64, device=device)
    if dist.is_available() and dist.is_initialized():
        dist.all_reduce(t)
    return t.tolist()


class Tracker:
    """Rank 0's MLflow logging; failures are warnings, never a lost training run."""

    def __init__(self, tracking: dict | None):
        self.uri = (tracking or {}).get("uri")
        self.run_id = (tracking or {}).get("run_id")

    def log(self, metrics: dict, step: int) -> None:
        if not self.run_id:
            return
        try:
            from clinitune import tracking

            tracking.log_metrics(self.uri, self.run_id, metrics, step)
        except Exception as err:  # the tracking store must not stop training
            log.warning("MLflow logging failed (%s); training continues", type(err).__name__)


def write_status(status_dir: str | None, rank: int, payload: dict) -> None:
    """A small per-worker heartbeat file (pid, step) for operators and tests; local storage only."""
    if not status_dir:
        return
    write_whole(Path(status_dir) / f"rank-{rank}.json", json.dumps(payload))


# --- the recipe ---------------------------------------------------------------------------------


def worker_threads(cfg: TrainConfig) -> int:
    """PyTorch CPU threads of one training worker."""
    return cfg.scaling.threads_per_worker or max(1, math.ceil(cfg.scaling.cpus_per_worker))


def train_loop_per_worker(loop_config: dict) -> None:
    """The Ray Train worker entry point."""
    TrainRecipe(loop_config).run()


class TrainRecipe:
    """One worker's fine-tuning run, phase by phase (LoRA, QLoRA, full; plain, DDP or DeepSpeed)."""

    def __init__(self, loop_config: dict):
        import ray
        import ray.train

        self.cfg = cfg = TrainConfig.model_validate(loop_config["config"])
        self.model_dir: str = loop_config["model_dir"]
        self.pad_id: int = loop_config["pad_token_id"]
        ctx = ray.train.get_context()
        self.rank, self.world = ctx.get_world_rank(), ctx.get_world_size()
        self.is_rank0 = self.rank == 0
        self.node_id = ray.get_runtime_context().get_node_id()
        if cfg.scaling.use_gpu:
            import ray.train.torch

            self.device = ray.train.torch.get_device()
            torch.cuda.set_device(self.device)
        else:
            self.device = torch.device("cpu")
        torch.set_num_threads(worker_threads(cfg))
        self.tracker = Tracker(loop_config.get("tracking") if self.is_rank0 else None)
        self.status_dir = loop_config.get("status_dir")
        self.report_progress = bool(loop_config.get("report_progress"))
        self.has_validation = bool(loop_config.get("has_validation"))
        self.t = cfg.training
        self.deepspeed_on = cfg.deepspeed.enabled
        self.adapters = cfg.method in ("lora", "qlora")
        self.bf16 = use_bf16(cfg)
        _, self.steps_per_epoch, self.total_steps = plan_steps(cfg, loop_config["train_sequences"], self.world)
        self.multiple_of = 8 if self.device.type == "cuda" else 1
        self.st = ckpt.TrainState(total_steps=self.total_steps)
        self.engine = None  # the DeepSpeed engine
        self.finished_copy: Path | None = None  # a finished run submitted again: its final checkpoint, re-reported
        self.done_at_start = False
        self.committed_step: int | None = None  # last checkpoint Ray Train has committed
        self.best_adapter: dict | None = None
        self.val_batches: list[dict] = []
        self.train_shard = self.val_shard = None
        # the loss stays on the device until a log step: a float() per micro-batch would make the CPU
        # wait for the GPU every step instead of preparing the next batch while it computes
        self.window_loss, self.window_tokens, self.window_targets = torch.zeros((), device=self.device), 0, 0
        self.t_last = time.time()  # set again when training starts: throughput counts training, not setup

    def run(self) -> None:
        self.setup_model()
        self.setup_optimizer()
        self.load_checkpoint()
        self.heartbeat()
        self.setup_data()
        self.train()
        self.finish()

    # --- set up ----------------------------------------------------------------------------------

    def setup_model(self) -> None:
        torch.manual_seed(self.t.seed)
        self.model = build_model(self.cfg, self.model_dir, self.device)

    def setup_optimizer(self) -> None:
        """Optimizer and schedule; DeepSpeed takes all three over, DDP wraps the model for several workers."""
        cfg = self.cfg
        self.optimizer = make_optimizer(cfg, trainable_parameters(self.model))
        self.scheduler = make_scheduler(cfg, self.optimizer, max(self.total_steps, 1))
        if self.deepspeed_on:
            import deepspeed

            self.engine, self.optimizer, _, self.scheduler = deepspeed.initialize(
                model=self.model, optimizer=self.optimizer, lr_scheduler=self.scheduler, config=deepspeed_config(cfg))
            self.model = self.engine
        elif self.world > 1:
            from torch.nn.parallel import DistributedDataParallel

            self.model = DistributedDataParallel(self.model, device_ids=[self.device.index] if self.device.type == "cuda" else None,
                                                 broadcast_buffers=False)
        self.ddp = isinstance(self.model, torch.nn.parallel.DistributedDataParallel)
        # logits only where a target is (same loss); with liger, its fused linear cross-entropy is left out then
        self.selective = self.t.selective_logits and supports_selective_logits(self.model)
        # DeepSpeed: the engine (ZeRO-3 needs every rank's forward)
        self.eval_model = self.model.module if self.ddp else self.model

    def load_checkpoint(self) -> None:
        """Resume from Ray Train's latest checkpoint, if there is one."""
        import ray.train

        checkpoint = ray.train.get_checkpoint()
        if checkpoint is None:
            return
        st = self.st
        with checkpoint.as_directory() as d:
            d = Path(d)
            st = self.st = ckpt.read_state(d)
            if st.done and self.is_rank0:
                self.finished_copy = Path(tempfile.mkdtemp(prefix="clinitune-ckpt-"))
                shutil.copytree(d, self.finished_copy, dirs_exist_ok=True)
            if not st.done:
                if self.deepspeed_on:
                    ckpt.load_zero(d, self.engine)
                else:
                    ckpt.load_plain(d, self.model, self.optimizer, self.scheduler, self.cfg.method)
        st.resumed_from_step = st.step
        st.restarts += 1
        st.total_steps = self.total_steps
        torch.manual_seed(self.t.seed + st.step)  # fresh dropout stream after a restart
        log.info("rank %d resumed from step %d (epoch %d, micro-batch %d)", self.rank, st.step, st.epoch, st.micro_in_epoch)
        self.done_at_start = st.done
        self.committed_step = st.step

    def setup_data(self) -> None:
        import ray.train

        self.train_shard = ray.train.get_dataset_shard("train")
        self.val_shard = ray.train.get_dataset_shard("validation") if self.has_validation else None

    def heartbeat(self) -> None:
        st = self.st
        write_status(self.status_dir, self.rank, {"rank": self.rank, "pid": os.getpid(), "node_id": self.node_id,
                                                  "step": st.step, "epoch": st.epoch,
                                                  "resumed_from_step": st.resumed_from_step, "committed_step": self.committed_step,
                                                  "time": time.time()})

    def prepare_batch(self, batch: dict) -> dict:
        """A numpy micro-batch as device tensors; with ``padding_free``, all its examples in one row."""
        return collate(flatten_batch(batch) if self.t.padding_free else batch, self.pad_id, self.device, self.multiple_of)

    def autocast(self):
        if self.bf16 and not self.deepspeed_on and self.device.type == "cuda":
            return torch.autocast("cuda", dtype=torch.bfloat16)
        return contextlib.nullcontext()

    # --- train -----------------------------------------------------------------------------------

    def train(self) -> None:
        """Epochs of optimizer steps until the step budget, the epochs or early stopping end it."""
        st, t = self.st, self.t
        self.model.train()
        self.t_last = time.time()
        while not self.done_at_start and st.step < self.total_steps and not st.early_stopped and st.epoch < t.epochs:
            self.train_epoch()
            if st.step >= self.total_steps or st.early_stopped:
                break
            st.epoch += 1
            st.micro_in_epoch = 0

    def train_epoch(self) -> None:
        """This worker's shard once, from the data position of the last checkpoint."""
        st, t = self.st, self.t
        batches = self.train_shard.iter_batches(batch_size=t.batch_size, batch_format="numpy", drop_last=True,
                                                local_shuffle_buffer_size=t.shuffle_buffer or None,
                                                local_shuffle_seed=t.seed + st.epoch if t.shuffle_buffer else None,
                                                prefetch_batches=2)
        window: list[dict] = []
        seen = 0
        for batch in batches:
            seen += 1
            if seen <= st.micro_in_epoch:  # already trained on before the restart
                continue
            if st.micro_in_epoch >= self.steps_per_epoch * t.grad_accum:  # the remainder of the epoch
                continue
            st.micro_in_epoch += 1
            window.append(self.prepare_batch(batch))
            if len(window) < t.grad_accum:
                continue
            self.train_step(window)
            window = []
            self.after_step()
            if st.step >= self.total_steps or st.early_stopped:
                break

    def train_step(self, window: list[dict]) -> None:
        """One optimizer step over the accumulation window."""
        model, t = self.model, self.t
        targets = sum(b["targets"] for b in window)
        n_items = torch.tensor(max(targets, 1), device=self.device)
        for i, b in enumerate(window):
            last = i == len(window) - 1
            sync = model.no_sync() if (self.ddp and not last) else contextlib.nullcontext()
            with sync:
                with self.autocast():
                    loss = causal_lm_loss(model, b, n_items, self.selective)
                if self.deepspeed_on:
                    self.engine.backward(loss, scale_wrt_gas=False)
                    self.engine.step()
                else:
                    loss.backward()
            self.window_loss += loss.detach().float() * max(targets, 1)
        if not self.deepspeed_on:
            if t.max_grad_norm > 0:
                torch.nn.utils.clip_grad_norm_(trainable_parameters(model), t.max_grad_norm)
            self.optimizer.step()
            self.scheduler.step()
            self.optimizer.zero_grad(set_to_none=True)
        self.window_tokens += sum(b["tokens"] for b in window)
        self.window_targets += targets
        self.st.step += 1
        self.heartbeat()

    def after_step(self) -> None:
        """Log, validate and checkpoint when their step comes."""
        st, cfg = self.st, self.cfg
        last_step = st.step >= self.total_steps
        do_log = st.step % self.t.log_every_n_steps == 0
        do_eval = cfg.eval.every_n_steps is not None and st.step % cfg.eval.every_n_steps == 0 and not last_step
        do_ckpt = st.step % cfg.checkpoint.every_n_steps == 0 and not last_step
        metrics: dict = {}
        if do_log or do_eval or do_ckpt:
            metrics.update(self.progress_metrics())
        if do_eval:
            val = self.validate()
            if val is not None:
                metrics["val_loss"] = val
                self.early_stopping(val)
                metrics["best_val_loss"] = st.best_val_loss
        if metrics:
            self.report(metrics, checkpoint_now=do_ckpt and not st.early_stopped)

    def progress_metrics(self) -> dict:
        """Loss, throughput, learning rate and memory since the last call (all workers summed); resets the window."""
        now = time.time()
        elapsed = max(now - self.t_last, 1e-9)
        self.t_last = now  # the next interval pays for this evaluation, report and checkpoint: wall-clock throughput
        loss_sum, tokens, tgt = all_sum([float(self.window_loss), self.window_tokens, self.window_targets], self.device)
        self.st.tokens_seen += int(tokens)
        self.window_loss, self.window_tokens, self.window_targets = torch.zeros((), device=self.device), 0, 0
        return {"train_loss": loss_sum / max(tgt, 1), "tokens_per_s": tokens / elapsed,
                "lr": self.scheduler.get_last_lr()[0], "peak_memory_gib": peak_memory_gib(self.device),
                "tokens_seen": self.st.tokens_seen}

    def early_stopping(self, val: float) -> None:
        st, ev = self.st, self.cfg.eval
        if st.best_val_loss is None or val < st.best_val_loss - ev.early_stopping_min_delta:
            st.best_val_loss, st.best_step, st.bad_evals = val, st.step, 0
            if self.adapters and ev.early_stopping_patience:
                self.best_adapter = _adapter_state(self.model)
        else:
            st.bad_evals += 1
        if ev.early_stopping_patience is not None and st.bad_evals >= ev.early_stopping_patience:
            st.early_stopped = True

    # --- validate --------------------------------------------------------------------------------

    def validate(self) -> float | None:
        """Validation loss over every worker's shard (the shard is read once and reused)."""
        if self.val_shard is None:
            return None
        t = self.t
        if not self.val_batches:
            for i, batch in enumerate(self.val_shard.iter_batches(batch_size=t.batch_size, batch_format="numpy", drop_last=False)):
                if self.cfg.eval.max_batches is not None and i >= self.cfg.eval.max_batches:
                    break
                self.val_batches.append(batch)
        self.model.eval()
        loss_sum, count = 0.0, 0
        with torch.no_grad():
            for batch in self.val_batches:
                b = self.prepare_batch(batch)
                with self.autocast():  # every rank runs every forward: ZeRO-3 gathers parameters collectively
                    loss = causal_lm_loss(self.eval_model, b, torch.tensor(max(b["targets"], 1), device=self.device), self.selective)
                loss_sum += float(loss) * b["targets"]
                count += b["targets"]
        self.model.train()
        total_loss, total_count = all_sum([loss_sum, count], self.device)
        return total_loss / total_count if total_count else None

    # --- checkpoint and report -------------------------------------------------------------------

    def save_checkpoint(self, final: bool):
        """This worker's part of a checkpoint in a local directory (None when it has nothing to add)."""
        import ray.train

        if self.done_at_start:  # nothing was trained: rank 0 re-reports the finished checkpoint as it is
            return ray.train.Checkpoint.from_directory(str(self.finished_copy)) if self.finished_copy else None
        d = Path(tempfile.mkdtemp(prefix="clinitune-ckpt-"))
        if self.deepspeed_on:
            if final:
                ckpt.save_zero_consolidated(d, self.engine, self.cfg.deepspeed.stage, self.is_rank0)
            else:
                ckpt.save_zero(d, self.engine)
        elif self.is_rank0:
            ckpt.save_plain(d, self.model, self.optimizer, self.scheduler, self.cfg.method, with_optimizer=not final)
        if self.is_rank0:
            ckpt.write_state(d, self.st)
        if not any(d.iterdir()):
            shutil.rmtree(d, ignore_errors=True)
            return None
        return ray.train.Checkpoint.from_directory(str(d))

    def report(self, metrics: dict, checkpoint_now: bool, final: bool = False) -> None:
        import ray.train

        st = self.st
        metrics = {**metrics, "step": st.step, "epoch": st.epoch, "total_steps": self.total_steps,
                   "restarts": st.restarts, "worker_pid": os.getpid()}
        if self.is_rank0:
            st.history.append({k: v for k, v in metrics.items() if k != "worker_pid"})
            self.tracker.log({k: v for k, v in metrics.items() if k not in ("worker_pid", "step")}, st.step)
        c = self.save_checkpoint(final) if checkpoint_now else None
        # Ray's controller takes one report per health-check interval (2 s): a worker reporting
        # more often waits for it (measured: 2.0 s per metrics-only report). Progress goes to the
        # tracker and the history; Ray gets checkpoint steps and the final report, and every report
        # only when a callback reads them (Tune's ASHA). Every rank reports at the same steps:
        # Ray Train synchronises the ranks in report (only rank 0 writes a plain checkpoint).
        if checkpoint_now or final or self.report_progress:
            try:
                ray.train.report(metrics, checkpoint=c)
            finally:
                if c is not None:
                    shutil.rmtree(c.path, ignore_errors=True)
        if checkpoint_now and self.is_rank0 and self.status_dir and not final:
            # the heartbeat names the step a restart would resume from (Ray commits a checkpoint
            # once every worker has reported it, within a health-check interval)
            from ray.train import CheckpointConsistencyMode

            done = ray.train.get_all_reported_checkpoints(consistency_mode=CheckpointConsistencyMode.COMMITTED, timeout_s=60)
            steps = [r.metrics.get("step", 0) for r in done if r.metrics]
            self.committed_step = max(steps) if steps else self.committed_step
            self.heartbeat()

    # --- the end ---------------------------------------------------------------------------------

    def finish(self) -> None:
        """Final validation, the best adapter back after early stopping, the final checkpoint."""
        import torch.distributed as dist

        st = self.st
        elapsed = max(time.time() - self.t_last, 1e-9)
        loss_sum, tokens, tgt = all_sum([float(self.window_loss), self.window_tokens, self.window_targets], self.device)
        st.tokens_seen += int(tokens)
        final: dict = {"peak_memory_gib": peak_memory_gib(self.device), "tokens_seen": st.tokens_seen,
                       "lr": self.scheduler.get_last_lr()[0] if self.total_steps else 0.0,
                       # CPU threads the worker computed with (OMP env from process start, torch intra-op)
                       "omp_threads": int(os.environ.get("OMP_NUM_THREADS") or 0), "torch_threads": torch.get_num_threads()}
        if tgt:
            final.update({"train_loss": loss_sum / tgt, "tokens_per_s": tokens / elapsed})
        if st.early_stopped and self.best_adapter is not None:
            from peft import set_peft_model_state_dict

            set_peft_model_state_dict(self.model.module if hasattr(self.model, "module") else self.model, self.best_adapter)
            final["restored_best_step"] = st.best_step
        if not self.done_at_start:
            val = self.validate()
            if val is not None:
                final["val_loss"] = val
                if st.best_val_loss is None or val < st.best_val_loss:
                    st.best_val_loss, st.best_step = val, st.step
                final["best_val_loss"] = st.best_val_loss
        else:  # a finished run submitted again: report its last metrics, train nothing
            final.update({k: v for k, v in (st.history[-1] if st.history else {}).items() if isinstance(v, (int, float))})
        final["early_stopped"] = float(st.early_stopped)
        if st.resumed_from_step is not None:
            final["resumed_from_step"] = st.resumed_from_step
        st.done = True
        self.report(final, checkpoint_now=True, final=True)
        if dist.is_available() and dist.is_initialized():
            dist.barrier()


def _adapter_state(model) -> dict:
    from peft import get_peft_model_state_dict

    unwrapped = model.module if hasattr(model, "module") else model
    return {k: v.detach().to("cpu", copy=True) for k, v in get_peft_model_state_dict(unwrapped).items()}
