"""Serving load: the Ray Serve app against an in-process transformers ``generate`` loop, and
retrieval latency at 100k chunks.

Generation. The same model, prompts and settings (greedy, ``--max-tokens``) on both sides:

* ``inprocess_generate`` — the named baseline: one process holding the model, serving requests one
  at a time with ``model.generate`` (what a plain Python server does), clients in threads.
* ``serve`` — ``clinitune.serve.app:build_app`` on a local Ray: gateway (API key, PHI guard on
  the output, audit log, metrics) -> generator (dynamic batching). Clients use the official
  ``openai`` async client over HTTP.

At 1, 8 and 32 concurrent clients (each sends its next request when the previous one returns) it
reports requests/s, completion tokens/s and p50/p99 request latency. Target: >= 3x the baseline's
throughput at 32 clients.

Retrieval. A knowledge base of ``--kb-chunks`` chunks (every billable ICD-10-CM code, then chunks
of synthetic clinical notes) is built once under ``--workdir`` and reused; hybrid queries
(embedding + BM25 + vector search + RRF) are timed in a process of their own started with the
retriever replica's environment (``QUERY_PROCESS_ENV``), calling what the replica calls.
Target: p99 <= 50 ms at 100k chunks.

    python benchmarks/serve_load.py [--model smollm2-135m-instruct] [--levels 1 8 32] [--max-tokens 32]
                                    [--kb-chunks 100000] [--skip-generation] [--skip-retrieval]

Prints one JSON object (and a markdown summary on stderr).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import socket
import sys
import threading
import time
from datetime import date
from pathlib import Path

os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

CONDITIONS = ["type 2 diabetes mellitus", "essential hypertension", "community acquired pneumonia", "COPD exacerbation",
              "chronic kidney disease stage 3", "atrial fibrillation", "major depressive disorder", "asthma",
              "congestive heart failure", "urinary tract infection", "hyperlipidemia", "osteoarthritis of the knee"]


def prompts(n: int) -> list[list[dict]]:
    out = []
    for i in range(n):
        a, b = CONDITIONS[i % len(CONDITIONS)], CONDITIONS[(i * 5 + 3) % len(CONDITIONS)]
        out.append([{"role": "user", "content": f"Note {i}: patient admitted with {a}; history of {b}. "
                                                "List the ICD-10-CM codes for this note."}])
    return out


def pct(values: list[float], q: float) -> float:
    import numpy as np

    return float(np.percentile(values, q)) if values else float("nan")


def summarize(level: int, latencies: list[float], tokens: int, wall: float) -> dict:
    return {"clients": level, "requests": len(latencies), "seconds": round(wall, 2),
            "requests_per_s": round(len(latencies) / wall, 3), "tokens_per_s": round(tokens / wall, 1),
            "p50_s": round(pct(latencies, 50), 3), "p99_s": round(pct(latencies, 99), 3)}


def requests_for(level: int, per_client: int) -> int:
    return max(8, level * per_client)


RANDOM_1B = "random-llama-1b"  # Llama-3.2-1B's body (16 layers, hidden 2048) with random weights and the tiny tokenizer


def model_dir(ref: str, workdir: Path) -> str:
    """The model's local directory (the embedded default is converted once; ``random-llama-1b`` written once)."""
    from clinitune.models import resolve_model

    if ref == RANDOM_1B:  # the GPU image has no embedded model package: throughput needs shapes, not weights
        from clinitune.models.tiny import create_tiny_model

        out = workdir / RANDOM_1B
        if not (out / "config.json").is_file():
            create_tiny_model(out, hidden_size=2048, num_layers=16, num_heads=32, num_kv_heads=8,
                              intermediate_size=8192, max_positions=4096)
        return str(out)

    try:
        return str(resolve_model(ref))
    except ValueError:
        # Workaround while clinitune.models cannot save a de-quantised GGUF model with this transformers
        # version: the same conversion, with the GGUF quantizer detached before saving.
        from transformers import AutoModelForCausalLM, AutoTokenizer

        from clinitune.models.gguf import embedded_gguf_path

        out = workdir / "smollm2-135m-instruct"
        if not (out / "config.json").is_file():
            g = embedded_gguf_path()
            tok = AutoTokenizer.from_pretrained(str(g.parent), gguf_file=g.name)
            model = AutoModelForCausalLM.from_pretrained(str(g.parent), gguf_file=g.name)
            del model.config.quantization_config
            model.hf_quantizer = None
            model.save_pretrained(out)
            tok.save_pretrained(out)
        return str(out)


# -- baseline -------------------------------------------------------------------------------------
def run_baseline(path: str, levels: list[int], per_client: int, max_tokens: int, gpu: bool = False) -> list[dict]:
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    device = "cuda" if gpu else "cpu"
    tok = AutoTokenizer.from_pretrained(path)
    model = AutoModelForCausalLM.from_pretrained(path, dtype=torch.bfloat16 if gpu else torch.float32).to(device).eval()
    lock = threading.Lock()

    def generate(messages) -> int:
        text = tok.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
        ids = torch.tensor([tok(text, add_special_tokens=False)["input_ids"]])
        with lock, torch.inference_mode():  # one model, one request at a time
            ids = ids.to(device)
            out = model.generate(input_ids=ids, attention_mask=torch.ones_like(ids), max_new_tokens=max_tokens,
                                 do_sample=False, pad_token_id=tok.pad_token_id or tok.eos_token_id)
        return int(out.shape[1] - ids.shape[1])

    generate(prompts(1)[0])  # warm up
    results = []
    for level in levels:
        work = prompts(requests_for(level, per_client))
        latencies: list[float] = []
        tokens = [0]
        nxt = [0]
        guard = threading.Lock()

        def client():
            while True:
                with guard:
                    if nxt[0] >= len(work):
                        return
                    i = nxt[0]
                    nxt[0] += 1
                t0 = time.perf_counter()
                n = generate(work[i])
                with guard:
                    latencies.append(time.perf_counter() - t0)
                    tokens[0] += n

        t0 = time.perf_counter()
        threads = [threading.Thread(target=client) for _ in range(level)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        results.append(summarize(level, latencies, tokens[0], time.perf_counter() - t0))
        print(f"baseline {results[-1]}", file=sys.stderr)
    return results


# -- serve ----------------------------------------------------------------------------------------
def run_serve(path: str, levels: list[int], per_client: int, max_tokens: int, workdir: Path, batch: int,
              gpu: bool = False) -> list[dict]:
    import httpx
    import openai
    import ray
    from ray import serve

    from clinitune.serve.app import build_app
    from clinitune.serve.auth import hash_key
    from clinitune.serve.config import ServeArgs

    key = "ct-bench-key"
    args = ServeArgs.model_validate({
        "workdir": str(workdir),
        "model": {"base": path, "max_tokens_limit": 512, "torch_threads": os.cpu_count(),  # the baseline's threads
                  "dtype": "bfloat16" if gpu else "float32", "device": "cuda" if gpu else "cpu"},
        "adapters": {"max_loaded_per_replica": 2},
        "batching": {"max_batch_size": batch, "batch_wait_timeout_s": 0.05},
        "retrieval": {"deploy": False, "enabled": False},
        "phi_guard": {"output": "redact"},
        "auth": {"keys_env": None, "keys": [{"id": "bench", "sha256": hash_key(key), "requests_per_minute": None}]},
        "deployments": {"gateway": {"num_cpus": 0.5, "max_ongoing_requests": 512},
                        "generator": {"num_cpus": 1, "num_gpus": 1 if gpu else 0, "max_ongoing_requests": max(64, batch)}},
    })
    ray.init(address="local", num_cpus=4, num_gpus=1 if gpu else 0, include_dashboard=False,
             log_to_driver=False)  # never a head someone started here
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    serve.start(http_options={"host": "127.0.0.1", "port": port})
    serve.run(build_app(args), name="clinitune", route_prefix="/", blocking=False)
    url = f"http://127.0.0.1:{port}"
    while httpx.get(f"{url}/ready", timeout=30).status_code != 200:
        time.sleep(1)

    async def level_run(level: int) -> dict:
        client = openai.AsyncOpenAI(base_url=f"{url}/v1", api_key=key, max_retries=0, timeout=900)
        work = prompts(requests_for(level, per_client))
        latencies: list[float] = []
        tokens = 0
        queue = list(range(len(work)))

        async def one_client():
            nonlocal tokens
            while queue:
                i = queue.pop(0)
                t0 = time.perf_counter()
                r = await client.chat.completions.create(model="base", messages=work[i], max_tokens=max_tokens,
                                                         temperature=0)
                latencies.append(time.perf_counter() - t0)
                tokens += r.usage.completion_tokens

        t0 = time.perf_counter()
        await asyncio.gather(*(one_client() for _ in range(level)))
        wall = time.perf_counter() - t0
        await client.close()
        return summarize(level, latencies, tokens, wall)

    try:
        asyncio.run(level_run(2))  # warm up
        results = []
        for level in levels:
            results.append(asyncio.run(level_run(level)))
            print(f"serve {results[-1]}", file=sys.stderr)
        return results
    finally:
        serve.shutdown()
        ray.shutdown()


# -- retrieval ------------------------------------------------------------------------------------
def build_kb(workdir: Path, chunks: int):
    from clinitune.rag.chunking import ChunkingOptions, Document, chunk_document
    from clinitune.rag.embed import Embedder
    from clinitune.rag.sources import icd10_documents
    from clinitune.rag.store import KbStore, search_text

    store = KbStore(workdir / "kb")
    name = f"bench{chunks}"
    if name in store.names() and store.count(name) >= chunks:
        return store, name, None
    store.create(name, recreate=True)
    embedder = Embedder(batch_size=128)
    opts = ChunkingOptions()

    def documents():
        yield from icd10_documents()
        from clinitune.synth import iter_notes

        for note in iter_notes(10**7, seed=7, dup_rate=0.0, near_dup_rate=0.0):
            yield Document(note["note_id"], "synthetic-notes", note["text"], title=note["note_type"])

    t0, pending, total = time.perf_counter(), [], 0
    for doc in documents():
        pending.extend(chunk_document(doc, opts))
        if len(pending) >= 1024 or total + len(pending) >= chunks:
            pending = pending[: chunks - total]
            store.upsert(name, pending, embedder.encode([search_text(c) for c in pending]), append=True)
            total += len(pending)
            pending = []
            if total % 10240 < 1024:
                print(f"  kb: {total:,} chunks, {time.perf_counter() - t0:.0f}s", file=sys.stderr)
            if total >= chunks:
                break
    t1 = time.perf_counter()
    indexes = store.maintain(name)
    return store, name, {"embed_and_write_s": round(t1 - t0, 1), "index_s": round(time.perf_counter() - t1, 1), **indexes}


def run_retrieval(workdir: Path, chunks: int, queries: int) -> dict:
    from clinitune.rag.embed import Embedder
    from clinitune.rag.retrieve import HybridRetriever

    store, name, built = build_kb(workdir, chunks)
    r = HybridRetriever(store, Embedder(), candidates=20)
    qs = [f"{c} with complications" for c in CONDITIONS] + ["E11.9", "I10", "J18.9 pneumonia", "fracture of left femur",
                                                            "chest pain on exertion", "vitamin K INR reversal"]
    for q in qs[:5]:
        r.retrieve(name, q, top_k=4)  # warm up caches
    result = {"kb_chunks": store.count(name), "built": built}
    for mode in ("hybrid", "vector", "text"):
        lat = []
        for i in range(queries):
            t0 = time.perf_counter()
            r.retrieve(name, qs[i % len(qs)], top_k=4, mode=mode)
            lat.append((time.perf_counter() - t0) * 1000)
        result[mode] = {"queries": queries, "p50_ms": round(pct(lat, 50), 1), "p99_ms": round(pct(lat, 99), 1)}
        print(f"retrieval {mode}: {result[mode]}", file=sys.stderr)
    return result


def run_retrieval_process(workdir: Path, chunks: int, queries: int) -> dict:
    """``run_retrieval`` in a fresh process with the retriever replica's environment (read at its start)."""
    import multiprocessing

    from clinitune.rag.embed import QUERY_PROCESS_ENV

    saved = {k: os.environ.get(k) for k in QUERY_PROCESS_ENV}
    os.environ.update(QUERY_PROCESS_ENV)  # a spawned child starts from this environment
    try:
        with multiprocessing.get_context("spawn").Pool(1) as pool:
            result = pool.apply(run_retrieval, (workdir, chunks, queries))
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
    return {**result, "process_env": QUERY_PROCESS_ENV}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="smollm2-135m-instruct")
    ap.add_argument("--levels", type=int, nargs="+", default=[1, 8, 32])
    ap.add_argument("--per-client", type=int, default=2, help="requests per client at each level (at least 8 in all)")
    ap.add_argument("--max-tokens", type=int, default=32)
    ap.add_argument("--batch", type=int, default=32, help="generator max_batch_size")
    ap.add_argument("--kb-chunks", type=int, default=100_000)
    ap.add_argument("--queries", type=int, default=300)
    ap.add_argument("--workdir", default="work/bench/serve")
    ap.add_argument("--skip-generation", action="store_true")
    ap.add_argument("--skip-retrieval", action="store_true")
    ap.add_argument("--gpu", action="store_true", help=f"both sides on the GPU in bf16 (the serve generator gets 1 GPU); --model {RANDOM_1B} needs no model package")
    ap.add_argument("--out", default=None, help="also write the JSON here")
    args = ap.parse_args()
    workdir = Path(args.workdir).resolve()
    workdir.mkdir(parents=True, exist_ok=True)
    import torch

    out: dict = {"date": date.today().isoformat(), "machine": f"{platform.machine()}, {os.cpu_count()} CPUs",
                 "load_average_at_start": [round(x, 1) for x in os.getloadavg()], "torch_threads": torch.get_num_threads()}
    if not args.skip_generation:
        path = model_dir(args.model, workdir)
        gen = out["generation"] = {"model": args.model, "max_tokens": args.max_tokens, "batch": args.batch, "gpu": args.gpu,
                                   "inprocess_generate": run_baseline(path, args.levels, args.per_client, args.max_tokens,
                                                                      args.gpu)}
        if args.out:  # the baseline is kept even if the Serve side cannot start (a GPU image without its packages)
            Path(args.out).write_text(json.dumps(out, indent=2))
        try:
            gen["serve"] = run_serve(path, args.levels, args.per_client, args.max_tokens, workdir, args.batch, args.gpu)
        except Exception as err:  # noqa: BLE001 - recorded; the process exits non-zero below
            gen["serve"] = {"error": f"{type(err).__name__}: {err}"[:1500]}
        for b, s in zip(gen["inprocess_generate"], gen["serve"] if isinstance(gen["serve"], list) else []):
            s["speedup"] = round(s["requests_per_s"] / b["requests_per_s"], 2)
    if not args.skip_retrieval:
        out["retrieval"] = run_retrieval_process(workdir, args.kb_chunks, args.queries)
    out["load_average_at_end"] = [round(x, 1) for x in os.getloadavg()]
    if args.out:
        Path(args.out).write_text(json.dumps(out, indent=2))
    print(json.dumps(out, indent=2))
    if isinstance(out.get("generation", {}).get("serve"), dict):
        raise SystemExit(1)


if __name__ == "__main__":
    main()
