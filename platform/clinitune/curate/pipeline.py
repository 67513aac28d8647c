"""The curation job on Ray Data: read -> validate -> clean -> dedup -> de-identify -> split -> write.

Records are never dropped: every row read (valid or quarantined) travels to the end with a
``status`` and ``reason``, and the manifest counts each terminal state. Global steps
(boilerplate detection, dedup) are computed distributed; only small results (a set of line
hashes, counts) come back to the driver, never the corpus.
"""

from __future__ import annotations

import errno
import hashlib
import json
import logging
import os
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterator

import pandas as pd
import pyarrow as pa

from clinitune.artifacts.curated import CARD, DROPPED, MANIFEST, OUTPUT_DIRS, QUARANTINE
from clinitune.artifacts.publish import publish_whole, recover
from clinitune.config import config_hash
from clinitune.curate import manifest as mf
from clinitune.curate.boilerplate import REMOVED_COLUMN, Boilerplate, find_boilerplate, strip_options
from clinitune.curate.chain import StepChain, apply_chain, check_chain, to_arrow
from clinitune.curate.config import CurateConfig
from clinitune.curate.dedup import mark_duplicates, shuffle_partitions
from clinitune.curate.readers import InputFile, discover_inputs, export, fingerprint_file, iter_read_task, plan_read_tasks
from clinitune.curate.unique_ids import quarantine_repeated_ids
from clinitune.errors import InputPathError, OutputPathError
from clinitune.phi.engine import DEFAULT_KEY_ENV
from clinitune.ray_utils import connect
from clinitune.schema import (
    DETAIL_COLUMN, LOCATION_COLUMN, REASON_COLUMN, RECORD_SCHEMA, SPLITS, STATUS_COLUMN,
    STATUS_DUPLICATE, STATUS_FILTERED, STATUS_OK, STATUS_QUARANTINED,
)

log = logging.getLogger(__name__)

NODE_COLUMN = "_node"
QUARANTINE_COLUMNS = ["note_id", "source", LOCATION_COLUMN, REASON_COLUMN, DETAIL_COLUMN]
DROPPED_COLUMNS = ["note_id", "source", LOCATION_COLUMN, STATUS_COLUMN, REASON_COLUMN, "dup_of"]
_INTERNAL = {STATUS_COLUMN, REASON_COLUMN, DETAIL_COLUMN, NODE_COLUMN, "dup_of", "split"}
Reporter = Callable[[str], None]


@dataclass
class CurationResult:
    output: Path
    manifest: dict[str, Any]
    reused: bool = False  # True when an identical earlier run's output was kept

    @property
    def manifest_path(self) -> Path:
        return self.output / MANIFEST


# ---------------------------------------------------------------------------------------------
# Ray Data functions (module level so they pickle by reference)


_EXPORTS: dict[str, Any] = {}


def _export_context(box: list | None):
    """The FHIR export context the driver put in the object store (fetched once per process)."""
    import ray

    if not box:
        return None
    key = box[0].hex()
    if key not in _EXPORTS:
        _EXPORTS.clear()
        _EXPORTS[key] = ray.get(box[0])
    return _EXPORTS[key]


def _read(batch: dict[str, Any], cfg, export_ref: list | None = None) -> Iterator[pa.Table]:
    """Read tasks into canonical rows, yielding bounded frames (a task may be a huge file)."""
    import ray

    node = ray.get_runtime_context().get_node_id()
    with export.use(_export_context(export_ref)):
        for task in batch["task"]:
            for df in iter_read_task(task, cfg):
                df[NODE_COLUMN] = node
                yield to_arrow(df)


def _partial_counts(batch: pd.DataFrame) -> pd.DataFrame:
    keys = [STATUS_COLUMN, REASON_COLUMN, "split", NODE_COLUMN]
    frame = batch.reindex(columns=keys).fillna("")
    out = frame.value_counts(dropna=False).reset_index(name="n")
    return out


def _select(batch: pd.DataFrame, statuses: list[str], split: str | None, columns: list[str] | None, drop: list[str]) -> pa.Table:
    mask = batch[STATUS_COLUMN].isin(statuses)
    if split is not None:
        mask &= batch["split"] == split
    out = batch.loc[mask]
    if columns is not None:
        out = out.reindex(columns=columns)
    else:
        out = out.drop(columns=[c for c in drop if c in out.columns])
    return to_arrow(out.reset_index(drop=True))


# ---------------------------------------------------------------------------------------------


def _key_env(cfg: CurateConfig) -> str:
    return cfg.deid.options.get("secret_key_env", DEFAULT_KEY_ENV)


def _key_runtime_env(cfg: CurateConfig) -> dict[str, Any]:
    """The secret key, from the driver's environment, for the de-id actors on every node (surrogates
    and pseudonyms need it; workers of a long-running cluster do not inherit the driver's env)."""
    env, key = _key_env(cfg), os.environ.get(_key_env(cfg))
    needed = cfg.deid.pseudonymize_patient_ids == "always" or (cfg.deid.enabled and cfg.deid.mode == "surrogate")
    return {"runtime_env": {"env_vars": {env: key}}} if key and needed else {}


def _resolve_pseudonymization(cfg: CurateConfig) -> CurateConfig:
    """'auto' becomes 'always' when the secret key is set, else 'never' (so the manifest's config
    and its hash record what ran, and setting the key later re-curates)."""
    if cfg.deid.pseudonymize_patient_ids != "auto":
        return cfg
    cfg = cfg.model_copy(deep=True)
    cfg.deid.pseudonymize_patient_ids = "always" if os.environ.get(_key_env(cfg)) else "never"
    return cfg


def _inputs_fingerprint(fps: list[dict[str, Any]]) -> str:
    payload = json.dumps(sorted((f["path"], f["size"], f["sha256"]) for f in fps))
    return hashlib.sha256(payload.encode()).hexdigest()


def _existing_manifest(output: Path) -> dict[str, Any] | None:
    path = output / MANIFEST
    if not path.exists():
        return None
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def _write(ds, path: Path, prefix: str, cfg: CurateConfig) -> None:
    from ray.data import SaveMode
    from ray.data.datasource.filename_provider import FilenameProvider

    class _Names(FilenameProvider):
        def get_filename_for_task(self, write_uuid: str, task_index: int) -> str:
            return f"{prefix}-{task_index:05d}.parquet"

    path.mkdir(parents=True, exist_ok=True)
    ds.write_parquet(
        str(path),
        filename_provider=_Names(),
        max_rows_per_file=cfg.output.max_rows_per_file,
        compression=cfg.output.compression,
        # Deterministic names (no write uuid) so a re-run yields identical files; the staging
        # directory is fresh for every run, so nothing can be overwritten.
        mode=SaveMode.OVERWRITE,
    )


def _tally(rows: pd.DataFrame) -> dict[str, Any]:
    def by(status: str, key: str = REASON_COLUMN) -> dict[str, int]:
        sub = rows[rows[STATUS_COLUMN] == status]
        return {str(k): int(v) for k, v in sub.groupby(key)["n"].sum().items()} if len(sub) else {}

    dups = by(STATUS_DUPLICATE)
    return {
        "input": int(rows["n"].sum()),
        "output": {s: int(rows[(rows[STATUS_COLUMN] == STATUS_OK) & (rows["split"] == s)]["n"].sum()) for s in SPLITS},
        "quarantined": by(STATUS_QUARANTINED),
        "filtered": by(STATUS_FILTERED),
        "duplicates": {
            "exact": int(dups.get("exact_duplicate", 0)),
            "near": int(dups.get("near_duplicate", 0)),
        },
    }


def run_curation(
    inputs: list[str],
    output: str | Path,
    cfg: CurateConfig | None = None,
    *,
    force: bool = False,
    report: Reporter | None = None,
) -> CurationResult:
    """Curate ``inputs`` into ``output``; returns the published result and its manifest."""
    import ray

    cfg = cfg or CurateConfig()
    say = report or (lambda msg: log.info(msg))
    output = Path(output).resolve()
    if output.exists() and not output.is_dir():
        raise InputPathError(f"output path '{output}' exists and is not a directory. Fix: pass a directory path.")
    if not inputs:
        raise InputPathError("no input given. Fix: pass at least one --input file or directory.")

    files, skipped = discover_inputs(list(inputs), cfg.reader)
    cfg = _resolve_pseudonymization(cfg)
    # Check the step chains (names, options, required columns) before any cluster time is spent.
    base_cols = set(RECORD_SCHEMA.names)
    pre_specs = [(s.name, s.options) for s in cfg.pre_steps]
    mid_specs = [(s.name, s.options) for s in cfg.steps]
    final_specs: list[tuple[str, dict[str, Any]]] = []
    if cfg.deid.enabled:
        detector = {"detector": cfg.deid.detector} if cfg.deid.detector else {}
        final_specs.append(("deidentify", {"mode": cfg.deid.mode, **detector, **cfg.deid.options}))
    final_specs.append(("patient_split", cfg.split.model_dump()))
    if cfg.deid.pseudonymize_patient_ids == "always":  # after the split: a patient's split follows its source id
        final_specs.append(("pseudonymize_ids", {"secret_key_env": _key_env(cfg)}))
    cols = {s for step in check_chain(pre_specs, base_cols) for s in step.adds} | base_cols
    cols |= {s for step in check_chain(mid_specs, cols) for s in step.adds}
    check_chain(final_specs, cols | {"dup_of"})

    extra = {"object_store_memory": cfg.execution.object_store_memory} if cfg.execution.object_store_memory else {}
    connect(cfg.execution.ray_address, num_cpus=cfg.execution.num_cpus, **extra)
    ctx = ray.data.DataContext.get_current()
    ctx.execution_options.preserve_order = True  # same input + config -> same output files

    recover(output, stale_staging=True)  # this run owns the output: earlier runs' leftovers go
    say(f"fingerprinting {len(files)} input file(s)")
    # Streamed SHA-256 in threads (hashlib releases the GIL): constant memory on the driver.
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(max_workers=4) as pool:
        fps = list(pool.map(fingerprint_file, [f.path for f in files]))
    for fp, f in zip(fps, files):
        fp["format"] = f.format
    chash = config_hash(cfg)
    inputs_fp = _inputs_fingerprint(fps)

    previous = _existing_manifest(output)
    if (
        previous
        and not force
        and cfg.output.skip_if_unchanged
        and previous.get("config_hash") == chash
        and previous.get("inputs_fingerprint") == inputs_fp
    ):
        say("inputs and config unchanged since the published run: output kept as is")
        return CurationResult(output, previous, reused=True)

    run_id = time.strftime("%Y%m%dT%H%M%S") + "-" + uuid.uuid4().hex[:6]
    t0 = time.time()
    try:
        with publish_whole(output, require=MANIFEST, run_id=run_id) as staging:
            manifest = _execute(files, skipped, fps, cfg, pre_specs, mid_specs, final_specs, staging, say)
            manifest.update(run_id=run_id, config_hash=chash, inputs_fingerprint=inputs_fp, seconds=round(time.time() - t0, 2))
            (staging / MANIFEST).write_text(mf.manifest_text(manifest), encoding="utf-8")
            (staging / CARD).write_text(mf.dataset_card(manifest), encoding="utf-8")
    except Exception as err:  # noqa: BLE001 - a full disk or unwritable output is the user's to fix
        unwritable = _unwritable(err)
        if unwritable is None:
            raise
        raise OutputPathError(
            f"cannot write the curated output at '{output}': {unwritable}; the previously published output, "
            "if any, is unchanged.", fix="free space there or pass a writable --output directory.",
        ) from None
    say(f"published {output}")
    return CurationResult(output, manifest)


_UNWRITABLE = {
    errno.ENOSPC: "no space left on the device", errno.EDQUOT: "disk quota exceeded",
    errno.EROFS: "the file system is read-only", errno.EACCES: "permission denied", errno.EPERM: "permission denied",
    errno.ENOTDIR: "a parent of it is not a directory",
}


def _unwritable(err: BaseException) -> str | None:
    """What about the output location failed, when ``err`` (or its cause, also across Ray) is a
    full disk, a read-only file system or a permission problem; else None."""
    seen: set[int] = set()
    stack: list[BaseException | None] = [err]
    while stack:
        e = stack.pop()
        if e is None or id(e) in seen:
            continue
        seen.add(id(e))
        if isinstance(e, OSError) and e.errno in _UNWRITABLE:
            return _UNWRITABLE[e.errno]
        stack.extend([e.__cause__, e.__context__, getattr(e, "cause", None)])
        text = str(e)
        for code, what in _UNWRITABLE.items():
            if f"[Errno {code}]" in text:
                return what
    return None


def _execute(
    files: list[InputFile],
    skipped: list[str],
    fps: list[dict[str, Any]],
    cfg: CurateConfig,
    pre_specs,
    mid_specs,
    final_specs,
    staging: Path,
    say: Reporter,
) -> dict[str, Any]:
    import ray

    ex = cfg.execution
    tasks = plan_read_tasks(files, cfg.reader)
    say(f"reading {len(files)} file(s) as {len(tasks)} task(s)")
    ds = ray.data.from_items([{"task": t} for t in tasks], override_num_blocks=max(1, len(tasks)))
    # One small task per read task: Ray's scheduler places them on every node with free CPUs.
    # A FHIR export: index its Binary resources (ids and offsets, no content) and which of them
    # notes point at, so a note finds its Binary in any file, in any order.
    binaries = [f.path for f in files if f.format == "fhir_binary"]
    export_ref = None
    if binaries:
        say(f"indexing {len(binaries)} FHIR Binary file(s)")
        notes = [f.path for f in files if f.format in ("ndjson", "json")]
        export_ref = [ray.put(export.ExportContext.build(binaries, notes))]
    ds = ds.map_batches(_read, fn_kwargs={"cfg": cfg.reader, "export_ref": export_ref}, batch_size=1, batch_format="numpy", num_cpus=0.5)
    # A read task yields one block per input file, so one big file would be one block: every
    # later step, every shuffle (whose partitions follow the block count) and de-identification
    # would then run as a single task on a single actor. Re-cut into blocks sized from the data.
    ds, read_blocks = size_blocks(ds.materialize(), ex.rows_per_block)
    # Cheap steps run as tasks; the final chain (the PHI engine) runs in an actor pool so each
    # actor builds its engine once.
    task_args = dict(batch_size=ex.batch_size, batch_format="pandas", num_cpus=0.5)
    if pre_specs:
        ds = ds.map_batches(apply_chain, fn_kwargs={"specs": pre_specs}, **task_args)
    ds = ds.materialize()

    found = Boilerplate()
    if cfg.boilerplate.enabled:
        say("finding boilerplate blocks")
        found = find_boilerplate(ds, cfg.boilerplate)
    specs = ([("strip_boilerplate", strip_options(found, cfg.boilerplate))] if found else []) + list(mid_specs)
    if specs:
        ds = ds.map_batches(apply_chain, fn_kwargs={"specs": specs}, **task_args)

    say("checking that note ids are unique")
    ds = ds.materialize()
    ds = quarantine_repeated_ids(ds, shuffle_partitions(ds, cfg.dedup.num_partitions))

    say("deduplicating (exact and near)")
    # Materialized before and after: dedup reads its input twice, and its shuffle actors must
    # release their CPUs before the de-id actor pool asks for them (on a 1-CPU cluster the two
    # would otherwise wait on each other forever).
    ds = mark_duplicates(ds.materialize(), cfg.dedup).materialize()

    say("de-identifying and splitting by patient")
    deid_blocks = ds.num_blocks()
    ds = ds.map_batches(
        StepChain, fn_constructor_kwargs={"specs": final_specs}, num_cpus=ex.deid_num_cpus,
        batch_size=ex.batch_size, batch_format="pandas", compute=_actor_pool(ex), **_deid_gpus(ex), **_key_runtime_env(cfg),
    )
    # Sorted by source location (unique per input record): dedup's shuffles reorder rows, and
    # the same input + config must give byte-identical files. The sort's range boundaries come
    # from a random sample, so its blocks (one file each) differ from run to run; an in-order
    # re-cut into a fixed block count makes the files, and the dataset hash, repeat exactly.
    ds = ds.sort(LOCATION_COLUMN).materialize()
    ds = ds.repartition(max(1, min(deid_blocks, ds.count()))).materialize()

    rows = ds.map_batches(_partial_counts, batch_format="pandas", batch_size=None).to_pandas()
    rows = rows.groupby([STATUS_COLUMN, REASON_COLUMN, "split", NODE_COLUMN], dropna=False)["n"].sum().reset_index()
    counts = _tally(rows)

    say("writing splits, quarantine and dropped-record index")
    drop = sorted(_INTERNAL)
    for split in SPLITS:
        sel = ds.map_batches(_select, fn_kwargs={"statuses": [STATUS_OK], "split": split, "columns": None, "drop": drop}, batch_format="pandas", batch_size=None)
        _write(sel, staging / split, split, cfg)
    q = ds.map_batches(_select, fn_kwargs={"statuses": [STATUS_QUARANTINED], "split": None, "columns": QUARANTINE_COLUMNS, "drop": []}, batch_format="pandas", batch_size=None)
    _write(q, staging / QUARANTINE, QUARANTINE, cfg)
    d = ds.map_batches(_select, fn_kwargs={"statuses": [STATUS_FILTERED, STATUS_DUPLICATE], "split": None, "columns": DROPPED_COLUMNS, "drop": []}, batch_format="pandas", batch_size=None)
    _write(d, staging / DROPPED, DROPPED, cfg)

    # Verify what was written, from the files themselves, before anything is published.
    written = {s: mf.count_rows(staging / s) for s in SPLITS}
    if written != counts["output"] or mf.count_rows(staging / QUARANTINE) != sum(counts["quarantined"].values()):
        raise RuntimeError(f"written row counts {written} do not match the tallied counts {counts['output']}")
    phi_counts = _json_totals(ds, "phi_counts") if cfg.deid.enabled else {}
    removed = _json_totals(ds, REMOVED_COLUMN) if found else {}
    return mf.build_manifest(
        counts=counts,
        reconciles=mf.reconcile(counts),
        inputs=fps,
        skipped_files=skipped,
        config=json.loads(json.dumps(cfg.model_dump(mode="json"))),
        deid={"enabled": cfg.deid.enabled, "mode": cfg.deid.mode if cfg.deid.enabled else None, "phi_counts": phi_counts,
              "patient_ids": "pseudonymized" if cfg.deid.pseudonymize_patient_ids == "always" else "as given"},
        boilerplate={"line_keys": len(found.lines), "lines_removed": removed, "notes_changed": _notes_with(ds, REMOVED_COLUMN) if found else 0},
        execution={"nodes": sorted({n for n in rows[NODE_COLUMN].dropna().unique() if n}), "read_tasks": len(tasks),
                   "blocks": {"read": read_blocks, "deid": deid_blocks}},
        files={s: sorted(p.name for p in (staging / s).glob("*.parquet")) for s in OUTPUT_DIRS},
        dataset_hash=mf.dataset_hash(staging),
    )


def size_blocks(ds, rows_per_block: int):
    """(``ds`` re-cut into max(cluster CPUs, ceil(rows / rows_per_block)) blocks, at most one per
    row, and the block count it was read as). ``ds`` is materialized, so counting is free."""
    import ray

    read_blocks = ds.num_blocks()
    n = ds.count()
    if n == 0:
        return ds, read_blocks
    cpus = int(ray.cluster_resources().get("CPU", 1))
    target = min(n, max(cpus, -(-n // rows_per_block)))
    if target == read_blocks:
        return ds, read_blocks
    # No shuffle: blocks are split and combined in order, so the output stays deterministic.
    return ds.repartition(target).materialize(), read_blocks


def _notes_with(ds, column: str) -> int:
    from ray.data.expressions import col

    return ds.filter(expr=col(column).is_not_null()).count()


def _json_totals(ds, column: str) -> dict[str, int]:
    """Sum of a per-note JSON object column of counts (PHI spans, boilerplate lines) by key."""
    def partial(batch: pd.DataFrame) -> pd.DataFrame:
        totals: dict[str, int] = {}
        col = batch[column] if column in batch.columns else []
        for raw in col:
            if isinstance(raw, str) and raw:
                for k, v in json.loads(raw).items():
                    totals[k] = totals.get(k, 0) + int(v)
        return pd.DataFrame({"kind": list(totals), "n": list(totals.values())})

    rows = ds.map_batches(partial, batch_format="pandas", batch_size=None).to_pandas()
    return {str(k): int(v) for k, v in rows.groupby("kind")["n"].sum().items()} if len(rows) else {}


def _deid_gpus(ex) -> dict[str, Any]:
    """The de-id actors take a GPU (or a share of one) when configured; the tagger runs there."""
    return {"num_gpus": ex.deid_num_gpus} if ex.deid_num_gpus > 0 else {}


def _actor_pool(ex) -> Any:
    """A fixed pool of ``concurrency`` actors, else autoscaling from one to what the CPUs hold."""
    import ray

    if ex.concurrency:
        return ray.data.ActorPoolStrategy(size=ex.concurrency)
    most = max(1, int(ray.cluster_resources().get("CPU", 1) // ex.deid_num_cpus))
    return ray.data.ActorPoolStrategy(min_size=1, max_size=most)
