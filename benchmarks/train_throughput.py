"""Training throughput: Clinitune on Ray Train vs a plain transformers + PEFT loop, same batches.

CPU (default): SmolLM2-135M-Instruct (the embedded default, converted from GGUF once), LoRA r16
on every linear layer, fp32, the icd10_coding task on synthetic notes (PHI replaced by tags
using the generator's gold spans), max_seq_len 384. Both sides train on the same tokenised
batches in the same order with the same number of threads, in the same run:

* ``plain``: the textbook loop in this process: ``get_peft_model``, ``AdamW``, padded batches
  with an attention mask, ``loss.backward()``, ``optimizer.step()``.
* ``clinitune``: ``run_finetune`` with one Ray Train worker (``TorchTrainer``, Ray Data
  streaming, MLflow, checkpoints). Its tokens/s is the steady state reported by the worker
  (first logging interval excluded as warm-up, as for the plain loop); the end-to-end wall time
  including Ray start-up is reported too.

The plain loop runs before and after Clinitune; the ratio uses their mean, so drift in a shared
machine's load counts against neither side. Target: clinitune / plain >= 1.0.

CPU smoke (``--smoke``, about a minute on a tiny random-init Llama; ``--model smollm2-135m-instruct``
for the real shape): every comparison of the GPU run on the same padded batches of the icd10_coding
task, with ratios against the plain loop (the named baseline) and against Clinitune's padded bare
loop in the same run: padding-free packing (``training.padding_free``, and with ``data.packing``),
``checkpoint_layers`` vs checkpointing every layer, the bare loop vs ``TorchTrainer``.

GPU (``--gpu``; needs a CUDA machine): a Llama-3-8B-shaped model with random weights (bf16,
written once to --workdir), seq 2048, LoRA r16 on all linear layers, gradient checkpointing,
batch 4; stages (``--stage``, the issue's priority order; see ``run_gpu``): ``lora`` (the plain
SDPA loop, the named baseline, vs Clinitune with and without ``checkpoint_layers`` and vs its bare
loop), ``packing`` (SFT-like varied lengths: padded vs padding-free with flex attention), ``qlora``
(NF4 batch sweep under 12 GiB), ``full`` (DeepSpeed ZeRO-3 at Llama-3.2-3B shapes).

Targets: LoRA >= 1.5x the baseline's tokens/s at <= 29.4 GiB, QLoRA peak <= 12 GiB, TorchTrainer
within 2% of the bare loop. Every stage's result (or error) is written to ``--out`` as soon as it
is known. ``--gpu --smoke`` runs the same code on a CPU with a tiny shape in a few minutes.
``benchmarks/gpu_loan.sh`` runs all of it (and serving, de-identification) on a GPU loan.

    python benchmarks/train_throughput.py [--steps 12] [--batch-size 4]
    python benchmarks/train_throughput.py --smoke [--model tiny] [--steps 8] [--max-seq-len 1024]
    python benchmarks/train_throughput.py --gpu [--stage lora,packing,qlora,full] [--steps 12] [--out result.json]

Prints one JSON object.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import tempfile
import time
from pathlib import Path

os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


# --- data ------------------------------------------------------------------------------------


def write_curated(out: Path, n_train: int, seed: int = 0) -> Path:
    """Synthetic notes in the curated layout, PHI replaced by [TYPE] tags (gold spans)."""
    import pandas as pd

    from clinitune.synth import iter_notes

    rows = []
    for rec in iter_notes(n_train + 8, seed):
        text = rec["text"]
        for span in sorted(rec.get("phi", []), key=lambda s: -s["start"]):
            text = text[: span["start"]] + f"[{span['type']}]" + text[span["end"]:]
        rows.append({"note_id": rec["note_id"], "patient_id": rec["patient_id"], "text": text,
                     "note_type": rec["note_type"], "note_date": rec["note_date"], "source": "synth",
                     "attributes": json.dumps({"icd10": rec["icd10"]})})
    for split, part in (("train", rows[:n_train]), ("validation", rows[n_train:])):
        (out / split).mkdir(parents=True, exist_ok=True)
        pd.DataFrame(part).to_parquet(out / split / "part-0.parquet", index=False)
    (out / "manifest.json").write_text(json.dumps({"source": "benchmark", "seed": seed, "n": len(rows)}))
    return out


def train_batches(dataset_dir: Path, batch_size: int, n: int) -> list[dict]:
    """The first ``n`` training batches, in the order Clinitune's worker reads them (no shuffle)."""
    import pyarrow.parquet as pq

    rows = []
    for f in sorted((dataset_dir / "train").rglob("*.parquet")):
        t = pq.read_table(f, columns=["status", "input_ids", "labels", "lengths"]).to_pylist()
        rows += [r for r in t if r["status"] == "ok"]
    batches = []
    for i in range(0, len(rows) - batch_size + 1, batch_size):
        chunk = rows[i: i + batch_size]
        batches.append({k: [r[k] for r in chunk] for k in ("input_ids", "labels", "lengths")})
    if len(batches) < n:
        raise SystemExit(f"need {n} batches, the dataset has {len(batches)}: raise --notes")
    return batches[:n]


# --- the plain loop ---------------------------------------------------------------------------


def plain_loop(model_dir: str, batches: list[dict], pad_id: int, *, lr: float, r: int, device: str, bf16: bool,
               grad_ckpt: bool, attn: str | None, warmup: int) -> dict:
    """transformers + PEFT as a user would write it; tokens/s over the batches after ``warmup``."""
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    dtype = torch.bfloat16 if bf16 else torch.float32
    attn_kw = {} if attn is None else {"attn_implementation": attn}  # None: transformers' default (sdpa)
    model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=dtype, **attn_kw).to(device)
    model.config.use_cache = False
    if grad_ckpt:
        model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
        model.enable_input_require_grads()
    model = get_peft_model(model, LoraConfig(r=r, lora_alpha=2 * r, lora_dropout=0.0, target_modules="all-linear",
                                             task_type="CAUSAL_LM"))
    model.train()  # from_pretrained returns eval mode, where transformers skips gradient checkpointing
    opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=lr)
    if device == "cuda":
        torch.cuda.reset_peak_memory_stats()
    tokens = 0
    t0 = time.perf_counter()
    for i, b in enumerate(batches):
        if i == warmup:
            if device == "cuda":
                torch.cuda.synchronize()
            tokens, t0 = 0, time.perf_counter()
        width = max(len(x) for x in b["input_ids"])
        ids = torch.full((len(b["input_ids"]), width), pad_id, dtype=torch.long)
        labels = torch.full_like(ids, -100)
        mask = torch.zeros_like(ids)
        for j, (x, y) in enumerate(zip(b["input_ids"], b["labels"])):
            ids[j, : len(x)] = torch.tensor(x)
            labels[j, : len(y)] = torch.tensor(y)
            mask[j, : len(x)] = 1
        with torch.autocast(device, dtype=torch.bfloat16, enabled=bf16 and device == "cuda"):
            out = model(input_ids=ids.to(device), attention_mask=mask.to(device), labels=labels.to(device))
        out.loss.backward()
        torch.nn.utils.clip_grad_norm_([p for p in model.parameters() if p.requires_grad], 1.0)
        opt.step()
        opt.zero_grad(set_to_none=True)
        tokens += int(mask.sum())
    if device == "cuda":
        torch.cuda.synchronize()
    seconds = time.perf_counter() - t0
    peak = torch.cuda.max_memory_allocated() / 2**30 if device == "cuda" else _rss_peak_gib()
    return {"tokens_per_s": tokens / seconds, "seconds": seconds, "tokens": tokens, "peak_memory_gib": peak,
            "last_loss": float(out.loss)}


def _rss_peak_gib() -> float:
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20


# --- Clinitune -------------------------------------------------------------------------------


def clinitune_run(cfg) -> dict:
    from clinitune.train.trainer import run_finetune

    t0 = time.perf_counter()
    artifact = run_finetune(cfg)
    wall = time.perf_counter() - t0
    m = json.loads((artifact / "metrics.json").read_text())
    reports = [h for h in m["history"] if "tokens_per_s" in h and "train_loss" in h]
    steady = reports[1:] or reports  # the first interval holds the data stream's warm-up
    # tokens/s over the steady intervals: tokens and time, not the mean of rates
    step_tokens = []
    prev_tokens = reports[0]["tokens_seen"] if len(reports) > 1 else 0
    for h in steady:
        step_tokens.append((h["tokens_seen"] - prev_tokens, (h["tokens_seen"] - prev_tokens) / h["tokens_per_s"]))
        prev_tokens = h["tokens_seen"]
    tokens = sum(t for t, _ in step_tokens)
    seconds = sum(s for _, s in step_tokens)
    return {"tokens_per_s": tokens / seconds, "seconds": seconds, "tokens": tokens, "wall_s_including_startup": wall,
            "peak_memory_gib": max(h["peak_memory_gib"] for h in m["history"] if "peak_memory_gib" in h),
            "last_loss": reports[-1]["train_loss"], "artifact": str(artifact)}


def finetune_config(model: str, source: Path, work: Path, *, steps: int, batch_size: int, max_seq_len: int,
                    method: str = "lora", gpu: bool = False, grad_ckpt: bool = False, liger: bool = False,
                    threads: int | None = None, lr: float = 2e-4, r: int = 16, max_note_chars: int = 900,
                    task: str = "icd10_coding", overlong: str = "drop", packing: bool = False,
                    padding_free: bool = False, checkpoint_layers: int | None = None, attention: str = "auto"):
    from clinitune.train.config import TrainConfig

    return TrainConfig.model_validate({
        "model": model, "method": method,
        "data": {"source": str(source), "task": {"name": task, "options": {"max_note_chars": max_note_chars} if task == "icd10_coding" else {}},
                 "max_seq_len": max_seq_len, "overlong": overlong, "cache_dir": str(work / "datasets"),
                 "splits": ["train"], "packing": packing},
        "lora": {"r": r, "alpha": 2 * r, "dropout": 0.0, "target_modules": "all-linear"},
        "training": {"max_steps": steps, "batch_size": batch_size, "learning_rate": lr, "warmup_ratio": 0.0,
                     "lr_scheduler": "constant", "shuffle_buffer": 0, "log_every_n_steps": 2, "seed": 0,
                     "gradient_checkpointing": grad_ckpt, "checkpoint_layers": checkpoint_layers if grad_ckpt else None,
                     "liger_kernel": liger, "padding_free": padding_free, "attention": attention},
        "eval": {"every_n_steps": None},
        "checkpoint": {"every_n_steps": 10**6, "num_to_keep": 1},
        "scaling": {"num_workers": 1, "use_gpu": gpu, "cpus_per_worker": 1, "threads_per_worker": threads,
                    "max_failures": 0},
        "tracking": {"enabled": True},
        "workdir": str(work),
    })


# --- CPU ---------------------------------------------------------------------------------------


def run_cpu(args) -> dict:
    import torch

    from clinitune import ray_utils
    from clinitune.data.build import build_dataset, load_manifest
    from clinitune.models.catalog import DEFAULT_MODEL, resolve_model

    threads = args.threads or os.cpu_count() or 1
    torch.set_num_threads(threads)
    work = Path(args.workdir or tempfile.mkdtemp(prefix="clinitune-bench-"))
    model_dir = resolve_model(DEFAULT_MODEL)
    source = write_curated(work / "curated", args.notes)
    ray_utils.connect(ray_utils.LOCAL, num_cpus=os.cpu_count())  # a fresh local Ray: the figures are this machine's
    cfg = finetune_config(DEFAULT_MODEL, source, work, steps=args.steps, batch_size=args.batch_size,
                          max_seq_len=args.max_seq_len, threads=threads, max_note_chars=args.max_note_chars)
    dataset = build_dataset(cfg.data, model_dir)
    pad_id = load_manifest(dataset)["pad_token_id"]
    batches = train_batches(dataset, args.batch_size, args.steps)
    kw = dict(lr=2e-4, r=16, device="cpu", bf16=False, grad_ckpt=False, attn="sdpa", warmup=2)
    before = plain_loop(str(model_dir), batches, pad_id, **kw)
    clinitune = clinitune_run(cfg)
    after = plain_loop(str(model_dir), batches, pad_id, **kw)
    plain_tps = (before["tokens_per_s"] + after["tokens_per_s"]) / 2
    return {
        "benchmark": "train_throughput", "mode": "cpu", "date": time.strftime("%Y-%m-%d"),
        "machine": f"{platform.machine()}, {os.cpu_count()} CPUs, torch {torch.__version__}",
        "model": "SmolLM2-135M-Instruct (embedded GGUF -> fp32)", "method": "lora r16 all-linear, fp32",
        "steps": args.steps, "batch_size": args.batch_size, "max_seq_len": args.max_seq_len, "threads": threads,
        "train_sequences": load_manifest(dataset)["splits"]["train"]["sequences"],
        "plain_before": before, "plain_after": after, "clinitune": clinitune,
        "ratio_clinitune_over_plain": clinitune["tokens_per_s"] / plain_tps,
        "target_ratio": 1.0,
    }


# --- GPU ---------------------------------------------------------------------------------------

# Llama-3-8B: 32 layers, hidden 4096, MLP 14336, 32 query / 8 key-value heads, 128k vocabulary.
LLAMA3_8B = dict(vocab_size=128256, hidden_size=4096, intermediate_size=14336, num_hidden_layers=32,
                 num_attention_heads=32, num_key_value_heads=8)
# the same code path on a CPU in seconds (--smoke): checks the script before GPU time is spent on it
# Llama-3.2-3B: 28 layers, hidden 3072, MLP 8192, 24 query / 8 key-value heads (full fine-tuning fits one GPU)
LLAMA32_3B = dict(vocab_size=128256, hidden_size=3072, intermediate_size=8192, num_hidden_layers=28,
                  num_attention_heads=24, num_key_value_heads=8)
SMOKE = dict(vocab_size=1024, hidden_size=64, intermediate_size=128, num_hidden_layers=2,
             num_attention_heads=4, num_key_value_heads=2)


def llama_shaped(out: Path, shape: dict, device: str) -> Path:
    """Random-init Llama of ``shape`` in bf16 (written once) with the tiny ChatML tokenizer (its ids fit any vocab)."""
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    from clinitune.models.tiny import build_tiny_tokenizer

    if (out / "config.json").is_file():
        return out
    tok = build_tiny_tokenizer()
    cfg = LlamaConfig(**shape, max_position_embeddings=8192, rope_theta=500000.0, tie_word_embeddings=False,
                      eos_token_id=tok.eos_token_id, pad_token_id=tok.pad_token_id, bos_token_id=None)
    torch.manual_seed(0)
    with torch.device(device):
        model = LlamaForCausalLM._from_config(cfg, dtype=torch.bfloat16)
    model.save_pretrained(out)
    tok.save_pretrained(out)
    del model
    if device == "cuda":
        torch.cuda.empty_cache()
    return out


def long_chat_source(out: Path, n: int, tokenizer_dir: Path, prompt_tokens: int) -> Path:
    """Prompt/response pairs whose chat rendering nearly fills the window (prompt cut to ``prompt_tokens``)."""
    import random

    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(tokenizer_dir)
    rng = random.Random(0)
    vocab = "patient denies chest pain shortness of breath history hypertension diabetes stable plan follow up".split()
    out.mkdir(parents=True, exist_ok=True)
    with open(out / "train.jsonl", "w") as f:
        for i in range(n):
            ids = tok(" ".join(rng.choice(vocab) for _ in range(prompt_tokens)), add_special_tokens=False)["input_ids"]
            prompt = tok.decode(ids[:prompt_tokens])
            f.write(json.dumps({"id": f"b{i}", "prompt": prompt, "response": "I10, E11.9"}) + "\n")
    return out


def bare_loop(cfg, model_dir: Path, batches: list[dict], pad_id: int, device: str, warmup: int) -> dict:
    """Clinitune's model setup and step (``build_model``, ``collate``, ``causal_lm_loss``) without Ray."""
    import torch

    from clinitune.train.attention import flatten_batch
    from clinitune.train.loop import collate
    from clinitune.train.loss import causal_lm_loss, supports_selective_logits
    from clinitune.train.model_setup import build_model, make_optimizer, trainable_parameters

    dev = torch.device(device)
    model = build_model(cfg, str(model_dir), dev)
    model.train()  # as the worker does: gradient checkpointing only acts in train mode
    params = trainable_parameters(model)
    opt = make_optimizer(cfg, params)
    selective = cfg.training.selective_logits and supports_selective_logits(model)
    cuda = device == "cuda"
    tokens, t0 = 0, time.perf_counter()
    for i, b in enumerate(batches):
        if i == warmup:
            if cuda:
                torch.cuda.synchronize()
            tokens, t0 = 0, time.perf_counter()
        x = collate(flatten_batch(b) if cfg.training.padding_free else b, pad_id, dev, 8 if cuda else 1)
        with torch.autocast("cuda", dtype=torch.bfloat16, enabled=cuda):
            loss = causal_lm_loss(model, x, torch.tensor(max(x["targets"], 1), device=dev), selective)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, cfg.training.max_grad_norm)
        opt.step()
        opt.zero_grad(set_to_none=True)
        tokens += x["tokens"]
    if cuda:
        torch.cuda.synchronize()
    seconds = time.perf_counter() - t0
    peak = torch.cuda.max_memory_allocated() / 2**30 if cuda else _rss_peak_gib()
    result = {"tokens_per_s": tokens / seconds, "seconds": seconds, "tokens": tokens, "selective_logits": selective,
              "attention": model.config._attn_implementation, "peak_memory_gib": peak, "last_loss": float(loss)}
    del model, opt, params
    _free(device)
    return result


def _free(device: str) -> None:
    import gc

    import torch

    gc.collect()
    if device == "cuda":
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats()


def _installed(module: str) -> bool:
    try:
        __import__(module)
    except ImportError:
        return False
    return True


def run_stage(res: dict, name: str, fn, device: str, out: str | None) -> dict:
    """``res[name] = fn()`` (or the error: one stage failing must not cost the others), then ``out`` rewritten."""
    import traceback

    t0 = time.perf_counter()
    try:
        res[name] = fn()
    except Exception as err:  # noqa: BLE001
        res[name] = {"error": f"{type(err).__name__}: {err}"[:1500], "traceback": traceback.format_exc()[-3000:]}
    if isinstance(res[name], dict):
        res[name]["stage_s"] = round(time.perf_counter() - t0, 1)
    print(f"[bench] {name}: {json.dumps(res[name])[:600]}", flush=True)
    _free(device)
    if out:
        Path(out).write_text(json.dumps(res, indent=2))
    return res[name]


def _tps(r) -> float | None:
    return r.get("tokens_per_s") if isinstance(r, dict) else None


def _ratio(a, b) -> float | None:
    return round(_tps(a) / _tps(b), 3) if _tps(a) and _tps(b) else None


def length_stats(batches: list[dict]) -> dict:
    """Example lengths (tokens) of the batches and the share of a padded batch that is padding."""
    import numpy as np

    lengths = np.array([n for b in batches for row in b["lengths"] for n in row])
    real = sum(len(x) for b in batches for x in b["input_ids"])
    padded = sum(len(b["input_ids"]) * max(len(x) for x in b["input_ids"]) for b in batches)
    return {"examples": int(len(lengths)), "min": int(lengths.min()), "p50": int(np.percentile(lengths, 50)),
            "p90": int(np.percentile(lengths, 90)), "max": int(lengths.max()), "padding_share": round(1 - real / padded, 3)}


# --- CPU smoke: every comparison of the GPU run, on a tiny model, in about a minute --------------


def run_smoke(args) -> dict:
    """Packing vs padding, LoRA, checkpoint_layers, the bare loop vs TorchTrainer; ratios within this run.

    The named baseline is the plain transformers + PEFT loop on the same padded batches. Every
    other side trains on the same examples: ``padding_free`` puts each padded batch's examples in
    one row, ``packed_rows`` first packs them into ``max_seq_len`` rows (``data.packing``).
    """
    import torch

    from clinitune import ray_utils
    from clinitune.data.build import build_dataset, load_manifest
    from clinitune.models.catalog import resolve_model
    from clinitune.models.tiny import create_tiny_model

    threads = args.threads or os.cpu_count() or 1
    torch.set_num_threads(threads)
    work = Path(args.workdir or tempfile.mkdtemp(prefix="clinitune-bench-smoke-"))
    if args.model == "tiny":
        model_dir = work / "tiny-llama"
        if not (model_dir / "config.json").is_file():
            create_tiny_model(model_dir, hidden_size=64, num_layers=2, intermediate_size=192, max_positions=4096)
    else:
        model_dir = resolve_model(args.model)
    source = write_curated(work / "curated", args.notes)
    ray_utils.connect(ray_utils.LOCAL, num_cpus=os.cpu_count())
    steps, batch, warmup = args.steps, args.batch_size, 2
    res: dict = {"benchmark": "train_throughput", "mode": "cpu-smoke", "date": time.strftime("%Y-%m-%d"),
                 "machine": f"{platform.machine()}, {os.cpu_count()} CPUs, torch {torch.__version__}",
                 "load_before": os.getloadavg(), "model": args.model, "method": "lora r8 all-linear, fp32",
                 "steps": steps, "warmup_steps": warmup, "batch_size": batch, "max_seq_len": args.max_seq_len,
                 "threads": threads, "baseline": "plain_padded"}

    def config(**kw):
        return finetune_config(str(model_dir), source, work, steps=steps, batch_size=batch, max_seq_len=args.max_seq_len,
                               threads=threads, r=8, max_note_chars=args.max_note_chars, **kw)

    cfg = config()
    dataset = build_dataset(cfg.data, model_dir)
    pad_id = load_manifest(dataset)["pad_token_id"]
    batches = train_batches(dataset, batch, steps)
    packed_cfg = config(packing=True, padding_free=True)
    packed_batches = train_batches(build_dataset(packed_cfg.data, model_dir), batch, steps)
    res["lengths"] = length_stats(batches)
    res["packed_rows_lengths"] = length_stats(packed_batches)

    def stage(name, fn):
        return run_stage(res, name, fn, "cpu", args.out)

    parts = [x for x in (args.stage or ",".join(SMOKE_STAGES)).split(",") if x]
    kw = dict(lr=2e-4, r=8, device="cpu", bf16=False, attn="sdpa", warmup=warmup)
    stage("plain_padded", lambda: plain_loop(str(model_dir), batches, pad_id, grad_ckpt=False, **kw))
    stage("bare_padded", lambda: bare_loop(cfg, model_dir, batches, pad_id, "cpu", warmup))
    if "packing" in parts:
        stage("bare_padding_free", lambda: bare_loop(config(padding_free=True), model_dir, batches, pad_id, "cpu", warmup))
        stage("bare_packed_rows_padding_free", lambda: bare_loop(packed_cfg, model_dir, packed_batches, pad_id, "cpu", warmup))
    if "checkpoint" in parts:
        stage("bare_checkpoint_all", lambda: bare_loop(config(grad_ckpt=True), model_dir, batches, pad_id, "cpu", warmup))
        stage("bare_checkpoint_layers_1", lambda: bare_loop(config(grad_ckpt=True, checkpoint_layers=1), model_dir, batches,
                                                            pad_id, "cpu", warmup))
    if "torchtrainer" in parts:
        stage("torchtrainer_padded", lambda: clinitune_run(cfg))
    res["ratios"] = {
        "bare_padded_over_plain": _ratio(res["bare_padded"], res["plain_padded"]),
        "padding_free_over_padded": _ratio(res.get("bare_padding_free"), res["bare_padded"]),
        "packed_rows_padding_free_over_padded": _ratio(res.get("bare_packed_rows_padding_free"), res["bare_padded"]),
        "checkpoint_layers_1_over_checkpoint_all": _ratio(res.get("bare_checkpoint_layers_1"), res.get("bare_checkpoint_all")),
        "torchtrainer_over_bare": _ratio(res.get("torchtrainer_padded"), res["bare_padded"]),
    }
    res["load_after"] = os.getloadavg()
    return res


GPU_STAGES = ("lora", "packing", "qlora", "full")
SMOKE_STAGES = ("packing", "checkpoint", "torchtrainer")


def varied_chat_source(out: Path, n: int, tokenizer_dir: Path, max_prompt: int, seed: int = 0) -> Path:
    """Prompt/response pairs with SFT-like lengths: prompts log-normal around a sixth of the window, answers short."""
    import random

    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(tokenizer_dir)
    rng = random.Random(seed)
    vocab = "patient denies chest pain shortness of breath history hypertension diabetes stable plan follow up".split()
    out.mkdir(parents=True, exist_ok=True)
    with open(out / "train.jsonl", "w") as f:
        for i in range(n):
            want = int(min(max_prompt, max(16, rng.lognormvariate(0, 0.8) * max_prompt / 6)))
            ids = tok(" ".join(rng.choice(vocab) for _ in range(want)), add_special_tokens=False)["input_ids"][:want]
            answer = ", ".join(rng.choice(["I10", "E11.9", "J18.9", "N17.9", "I50.9"]) for _ in range(rng.randint(1, 6)))
            f.write(json.dumps({"id": f"v{i}", "prompt": tok.decode(ids), "response": answer}) + "\n")
    return out


def run_gpu(args) -> dict:
    """The stages in ``--stage`` (default all, in the issue's priority order); each result or error is
    written to ``--out`` as soon as it is known.

    * ``lora``: the plain SDPA loop (named baseline) vs Clinitune LoRA (checkpointing every layer, and
      ``checkpoint_layers``) vs Clinitune's step in a bare loop (TorchTrainer overhead);
    * ``packing``: SFT-like varied lengths: the plain loop on padded batches (named baseline) vs
      Clinitune with ``data.packing`` + ``padding_free`` (flex attention's document mask) and the
      bare loop padded vs padding-free on the same examples;
    * ``qlora``: NF4 at batch 1, 2, 4, 8 until the peak passes 12 GiB;
    * ``full``: full fine-tuning under DeepSpeed ZeRO-3 at Llama-3.2-3B shapes (8B's Adam state does
      not fit one GPU without CPU offload).
    """
    import torch

    from clinitune import ray_utils
    from clinitune.data.build import build_dataset, load_manifest

    smoke = args.smoke
    device = "cpu" if smoke else "cuda"
    stages = [x for x in (args.stage or ",".join(GPU_STAGES)).split(",") if x]
    if not smoke and not torch.cuda.is_available():
        raise SystemExit("--gpu needs a CUDA device (or --smoke to check the script on a CPU)")
    seq, batch, steps = (256, 4, 6) if smoke else (2048, 4, args.steps)
    warmup = 2 if smoke else 3
    liger = not smoke and _installed("liger_kernel")
    tracking = _installed("mlflow")  # the GPU image has no MLflow: the run is then not tracked
    work = Path(args.workdir or tempfile.mkdtemp(prefix="clinitune-bench-gpu-"))
    import peft
    import transformers

    res: dict = {
        "benchmark": "train_throughput", "mode": "gpu-smoke" if smoke else "gpu", "date": time.strftime("%Y-%m-%d"),
        "stages": stages, "device": torch.cuda.get_device_name() if not smoke else platform.machine(),
        "versions": {"torch": torch.__version__, "transformers": transformers.__version__, "peft": peft.__version__},
        "liger_kernel": liger, "model": "Llama-3-8B shapes, random weights, bf16" if not smoke else "smoke shape",
        "seq": seq, "batch_size": batch, "steps": steps, "warmup_steps": warmup,
        "targets": {"lora_speedup": 1.5, "lora_peak_gib": 29.4, "qlora_peak_gib": 12.0, "torchtrainer_overhead": 0.02,
                    "qlora_rate_over_lora": 0.6},
    }

    def stage(name: str, fn):
        return run_stage(res, name, fn, device, args.out)

    model_dir = llama_shaped(work / "llama-shaped", SMOKE if smoke else LLAMA3_8B, device)
    ray_utils.connect()
    if device == "cuda":
        torch.cuda.set_device(0)

    def config(source: Path, method: str, batch_size: int, n_steps: int, mdir: Path = model_dir, **kw):
        cfg = finetune_config(str(mdir), source, work, steps=n_steps, batch_size=batch_size, max_seq_len=seq,
                              gpu=not smoke, grad_ckpt=kw.pop("grad_ckpt", True), liger=liger, method=method,
                              task="instructions", overlong="drop", r=16, **kw)
        return cfg.model_copy(update={"tracking": cfg.tracking.model_copy(update={"enabled": tracking})})

    def data(cfg) -> tuple[list[dict], int]:
        dataset = build_dataset(cfg.data, Path(cfg.model))
        return train_batches(dataset, cfg.training.batch_size, cfg.training.max_steps), load_manifest(dataset)["pad_token_id"]

    kw = dict(lr=2e-4, r=16, device=device, bf16=True, grad_ckpt=True, warmup=warmup)
    long_source = long_chat_source(work / "chat", n=batch * (steps + 2) + 8, tokenizer_dir=model_dir, prompt_tokens=seq - 48)
    if "lora" in stages:
        cfg = config(long_source, "lora", batch, steps)
        batches, pad_id = data(cfg)
        res["train_tokens_per_step"] = sum(sum(len(x) for x in b["input_ids"]) for b in batches) / len(batches)
        base = stage("baseline_plain_sdpa", lambda: plain_loop(str(model_dir), batches, pad_id, attn=None, **kw))
        if args.eager_baseline:
            stage("baseline_plain_eager", lambda: plain_loop(str(model_dir), batches, pad_id, attn="eager", **kw))
        layers = 2 if smoke else 26  # Llama-3-8B: ~6 of 32 layers' activations fit the 29.4 GiB budget
        lora_layers = stage("clinitune_lora_checkpoint_layers",
                            lambda: clinitune_run(config(long_source, "lora", batch, steps, checkpoint_layers=layers)))
        lora = stage("clinitune_lora", lambda: clinitune_run(cfg))
        # in this process after the Ray runs: liger patches transformers' modules process-wide
        bare = stage("bare_loop_same_setup", lambda: bare_loop(cfg, model_dir, batches, pad_id, device, warmup))
        res["lora_speedup_vs_plain_sdpa"] = _ratio(lora, base)
        res["lora_checkpoint_layers_speedup_vs_plain_sdpa"] = _ratio(lora_layers, base)
        if _tps(lora) and _tps(bare):
            res["torchtrainer_overhead"] = round(1 - _tps(lora) / _tps(bare), 4)
    if "packing" in stages:
        varied = varied_chat_source(work / "varied", n=batch * (steps + 2) * 6, tokenizer_dir=model_dir, max_prompt=seq - 48)
        padded_cfg = config(varied, "lora", batch, steps)
        batches, pad_id = data(padded_cfg)
        res["varied_lengths"] = length_stats(batches)
        base = stage("varied_baseline_plain_sdpa", lambda: plain_loop(str(model_dir), batches, pad_id, attn=None, **kw))
        flat_cfg = config(varied, "lora", batch, steps, padding_free=True)
        stage("varied_bare_padded", lambda: bare_loop(padded_cfg, model_dir, batches, pad_id, device, warmup))
        flat = stage("varied_bare_padding_free", lambda: bare_loop(flat_cfg, model_dir, batches, pad_id, device, warmup))
        packed = stage("varied_clinitune_packed_padding_free",
                       lambda: clinitune_run(config(varied, "lora", batch, steps, packing=True, padding_free=True)))
        res["padding_free_speedup_vs_plain_sdpa"] = _ratio(flat, base)
        res["packed_clinitune_speedup_vs_plain_sdpa"] = _ratio(packed, base)
        res["padding_free_over_padded_bare"] = _ratio(flat, res.get("varied_bare_padded"))
    if "qlora" in stages:
        for b in (1, 2, 4, 8):
            r = stage(f"clinitune_qlora_batch{b}", lambda: clinitune_run(config(long_source, "qlora", b, min(steps, 8))))
            if "error" in r or r.get("peak_memory_gib", 0) > 12.0:
                break
    if "full" in stages:
        mdir = llama_shaped(work / "llama-3b-shaped", SMOKE if smoke else LLAMA32_3B, device)
        src = long_chat_source(work / "chat-3b", n=batch * (steps + 2) + 8, tokenizer_dir=mdir, prompt_tokens=seq - 48)
        for stage_n in (3,):
            full = config(src, "full", batch, steps, mdir=mdir, checkpoint_layers=None)
            full = full.model_copy(update={"deepspeed": full.deepspeed.model_copy(update={"enabled": not smoke, "stage": stage_n})})
            stage(f"clinitune_full_zero{stage_n}_3b", lambda: clinitune_run(full))
    return res


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--gpu", action="store_true", help="Run the GPU benchmark (Llama-3-8B shapes) instead of the CPU one.")
    p.add_argument("--steps", type=int, default=None, help="Optimizer steps per side (the first 2 are warm-up); default 12, 6 with --smoke alone.")
    p.add_argument("--batch-size", type=int, default=4, help="Sequences per step (CPU).")
    p.add_argument("--max-seq-len", type=int, default=None, help="Maximum tokens per sequence (CPU; default 384, 1024 with --smoke alone).")
    p.add_argument("--notes", type=int, default=120, help="Synthetic notes to build the CPU dataset from.")
    p.add_argument("--threads", type=int, default=None, help="Torch threads for both sides (default: all cores).")
    p.add_argument("--workdir", default=None, help="Where data, runs and the model go (default: a temp dir).")
    p.add_argument("--smoke", action="store_true", help="Alone: the CPU smoke comparisons (packing vs padding, checkpoint_layers, bare loop vs TorchTrainer) on a tiny model in about a minute. With --gpu: the GPU code path on a CPU with a tiny shape.")
    p.add_argument("--model", default="tiny", help="With --smoke alone: 'tiny' (a random-init 4-layer Llama) or a registered model such as smollm2-135m-instruct.")
    p.add_argument("--max-note-chars", type=int, default=None, help="Longest note text in a prompt (CPU and --smoke; default 900, 400 with --smoke alone): sets the length spread.")
    p.add_argument("--eager-baseline", action="store_true", help="With --gpu: also time the plain loop with eager attention.")
    p.add_argument("--stage", default=None, help=f"Comma-separated stages (default: all): with --gpu {','.join(GPU_STAGES)}; with --smoke alone {','.join(SMOKE_STAGES)}.")
    p.add_argument("--out", default=None, help="Also write the JSON here (with --gpu: after every stage).")
    args = p.parse_args()
    smoke_only = args.smoke and not args.gpu
    known = SMOKE_STAGES if smoke_only else GPU_STAGES
    unknown = sorted(set(x for x in (args.stage or "").split(",") if x) - set(known))
    if unknown:
        p.error(f"--stage: unknown {unknown}; choose from {', '.join(known)}")
    args.steps = args.steps or (6 if smoke_only else 12)
    args.max_seq_len = args.max_seq_len or (1024 if smoke_only else 384)
    args.max_note_chars = args.max_note_chars or (400 if smoke_only else 900)
    result = run_gpu(args) if args.gpu else run_smoke(args) if args.smoke else run_cpu(args)
    if args.out:
        Path(args.out).write_text(json.dumps(result, indent=2))
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
