"""Exact and near-duplicate detection, distributed on Ray Data.

Only rows with status ``ok`` take part; every row comes back (row count unchanged) with
duplicates marked ``status="duplicate"``, ``reason`` ``exact_duplicate`` or ``near_duplicate``,
and column ``dup_of`` naming the note kept in its place (null otherwise).

**Exact.** Key: xxh3-128 of the text case-folded with every whitespace run collapsed to one
space. Rows are hash-partitioned by key; in each group the survivor is the smallest
``note_id`` (string order) and the others are ``exact_duplicate`` with ``dup_of`` = survivor.

**Near.** Only exact survivors go on, so no note is counted twice. Shingles are word 5-grams
(``shingle_size``) over ``\\w+`` tokens of the case-folded text: words rather than characters
because clinical notes share many character sequences (units, abbreviations) and word shingles
are about 6x fewer to hash; a note with fewer words than ``shingle_size`` is one shingle.
MinHash follows datasketch's scheme (32-bit shingle hashes, ``(a*h + b) mod (2^61-1)``
permutations drawn from ``seed``), and LSH cuts the ``num_perm`` values into ``bands`` bands of
``rows`` values, chosen like datasketch's ``_optimal_param`` (minimise weighted false positive
and false negative probability mass around ``threshold``; misses weigh more by default because
every candidate pair is verified anyway). A bucket is the notes sharing one band key; within a
bucket, members are sorted by ``note_id`` and each member is compared with the earlier ones (the
first ``max_bucket_size`` of them at most): its estimated Jaccard (share of equal signature
values) with the smallest earlier member reaching ``threshold`` makes it a ``near_duplicate`` of
that member. Over all buckets a note keeps the smallest such ``dup_of``. The larger id of each
verified pair is the duplicate, so chains A~B~C drop B and C even when A and C are not similar.

**Where the memory goes.** Every note has ``bands`` band keys, and almost every bucket has one
member. So the band shuffle carries only (band key, note_id) rows; a pass over each bucket keeps
the members of buckets with two or more notes (the candidates), those few rows are joined with
the (note_id, signature) table, shuffled by band key again and verified. Signatures (4 bytes x
``num_perm``) thus cross the shuffle once per note plus once per candidate membership, not once
per band: the band shuffle is about 15x smaller than rows carrying the signature. The result is
the same as verifying the full band rows (same buckets, same members, same signatures).

**Joining back.** The small duplicate table (note_id, dup_of, reason) is joined to the rows with
``Dataset.join`` (left outer, on ``note_id``; needs ``polars``) so the corpus is never collected
on the driver. ``note_id`` must be unique among live rows (``unique_ids`` quarantines repeats first).

Results do not depend on block order: every decision is a function of a group's members
sorted by ``note_id``.
"""

from __future__ import annotations

import functools
import re
from typing import TYPE_CHECKING, Iterable

import numpy as np
import pyarrow as pa
import xxhash
from pydantic import Field

from clinitune.config import StrictModel
from clinitune.schema import REASON_COLUMN, STATUS_COLUMN, STATUS_DUPLICATE, STATUS_OK

if TYPE_CHECKING:  # pragma: no cover
    import ray.data

EXACT_DUPLICATE = "exact_duplicate"
NEAR_DUPLICATE = "near_duplicate"
DUP_OF = "dup_of"
_DUP_REASON = "_dup_reason"
_DUP_ROWS_PER_BLOCK = 1_000_000

_MERSENNE_PRIME = np.uint64((1 << 61) - 1)
_MAX_HASH = np.uint64((1 << 32) - 1)
_TOKEN_RE = re.compile(r"\w+")

_KEYS_SCHEMA = pa.schema([("note_id", pa.string()), ("exact_hash", pa.string()), ("sig", pa.binary())])
_BAND_KEYS_SCHEMA = pa.schema([("band_key", pa.uint64()), ("note_id", pa.string())])
_BANDS_SCHEMA = pa.schema([("band_key", pa.uint64()), ("note_id", pa.string()), ("sig", pa.binary())])
_SIGS_SCHEMA = pa.schema([("note_id", pa.string()), ("sig", pa.binary())])
_PAIRS_SCHEMA = pa.schema([("note_id", pa.string()), (DUP_OF, pa.string())])
_DUPS_SCHEMA = pa.schema([("note_id", pa.string()), (DUP_OF, pa.string()), (_DUP_REASON, pa.string())])


class DedupConfig(StrictModel):
    """Exact and near-duplicate removal."""

    exact: bool = Field(True, description="Mark notes whose normalised text (case-folded, whitespace collapsed) is identical.")
    near: bool = Field(True, description="Mark near duplicates found with MinHash LSH.")
    threshold: float = Field(0.8, gt=0, le=1, description="Estimated Jaccard similarity of word shingles at or above which two notes are near duplicates.")
    num_perm: int = Field(128, ge=8, le=1024, description="MinHash permutations (signature length); more is more precise and slower.")
    shingle_size: int = Field(5, ge=1, le=20, description="Words per shingle (word n-grams over \\w+ tokens).")
    seed: int = Field(1, ge=0, description="Seed of the MinHash permutations (change it only to re-draw them).")
    false_negative_weight: float = Field(
        0.7, gt=0, lt=1,
        description="When choosing bands x rows: weight of missed pairs against spurious candidates (whose weight is "
        "1 minus this). Candidates are all verified, so a spurious one costs only a comparison; 0.5 is datasketch's "
        "default. With 0.7 at threshold 0.8, pairs of Jaccard 0.85 / 0.9 become candidates with p = 0.87 / 0.98.",
    )
    max_bucket_size: int = Field(
        1000, ge=2,
        description="In an LSH bucket, each note is compared with at most this many earlier (smaller-id) notes; "
        "bounds the cost of buckets made of thousands of templated notes.",
    )
    num_partitions: int | None = Field(
        None, ge=1,
        description="Shuffle partitions for grouping and joining; null = the input's block count, which the pipeline "
        "sizes from the note count (execution.rows_per_block), capped by Ray's default hash-shuffle parallelism.",
    )

    def lsh_params(self) -> tuple[int, int]:
        """(bands, rows) for this threshold and signature length."""
        return optimal_lsh_params(self.threshold, self.num_perm, 1.0 - self.false_negative_weight, self.false_negative_weight)


# ---------------------------------------------------------------------------------------------
# In-process building blocks (pure, used by the Ray functions and by tests)


@functools.lru_cache(maxsize=64)
def optimal_lsh_params(threshold: float, num_perm: int, fp_weight: float = 0.5, fn_weight: float = 0.5) -> tuple[int, int]:
    """Bands and rows minimising weighted false-positive + false-negative probability mass.

    P(candidate | Jaccard s) = 1 - (1 - s^r)^b; false positives integrate it over [0, threshold],
    false negatives integrate 1 - P over [threshold, 1] (the method of datasketch's LSH).
    """
    lo = np.linspace(0.0, threshold, 513)
    hi = np.linspace(threshold, 1.0, 513)
    best, best_err = (1, num_perm), float("inf")
    for b in range(1, num_perm + 1):
        for r in range(1, num_perm // b + 1):
            fp = np.trapezoid(1 - (1 - lo**r) ** b, lo)
            fn = np.trapezoid((1 - hi**r) ** b, hi)
            err = fp_weight * fp + fn_weight * fn
            if err < best_err:
                best, best_err = (b, r), err
    return best


@functools.lru_cache(maxsize=16)
def _permutations(num_perm: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    gen = np.random.RandomState(seed)
    a = gen.randint(1, int(_MERSENNE_PRIME), size=num_perm, dtype=np.uint64)
    b = gen.randint(0, int(_MERSENNE_PRIME), size=num_perm, dtype=np.uint64)
    return a, b


def normalize_for_exact(text: str) -> str:
    return " ".join(text.casefold().split())


def exact_key(text: str) -> str:
    """Hash of the case-folded, whitespace-collapsed text."""
    return xxhash.xxh3_128_hexdigest(normalize_for_exact(text).encode("utf-8"))


def shingles(text: str, size: int) -> set[str]:
    """Word ``size``-grams of the case-folded ``\\w+`` tokens (one shingle when the note is shorter)."""
    tokens = _TOKEN_RE.findall(text.casefold())
    if not tokens:
        return set()
    if len(tokens) <= size:
        return {" ".join(tokens)}
    return {" ".join(tokens[i : i + size]) for i in range(len(tokens) - size + 1)}


def minhash_signature(text: str, cfg: DedupConfig) -> np.ndarray | None:
    """MinHash signature (uint32[num_perm]) of a note's shingles; None when it has no words."""
    sh = shingles(text, cfg.shingle_size)
    if not sh:
        return None
    hv = np.fromiter((xxhash.xxh32_intdigest(s.encode("utf-8")) for s in sh), dtype=np.uint64, count=len(sh))
    a, b = _permutations(cfg.num_perm, cfg.seed)
    with np.errstate(over="ignore"):
        phv = ((np.outer(hv, a) + b) % _MERSENNE_PRIME) & _MAX_HASH
    return phv.min(axis=0).astype(np.uint32)


def estimated_jaccard(sig_a: np.ndarray, sig_b: np.ndarray) -> float:
    return float(np.count_nonzero(sig_a == sig_b)) / len(sig_a)


def band_keys(sig: np.ndarray, bands: int, rows: int) -> list[int]:
    """One 64-bit key per band (the band index seeds the hash, so equal values in different bands differ)."""
    return [xxhash.xxh64_intdigest(sig[i * rows : (i + 1) * rows].tobytes(), seed=i) for i in range(bands)]


def _bucket_pairs(ids: list[str], sigs: np.ndarray, threshold: float, window: int) -> Iterable[tuple[str, str]]:
    """(duplicate, smallest earlier verified match) for one bucket whose members are sorted by id."""
    for j in range(1, len(ids)):
        earlier = sigs[: min(j, window)]
        sim = np.count_nonzero(earlier == sigs[j], axis=1) / sigs.shape[1]
        hits = np.flatnonzero(sim >= threshold)
        if len(hits):
            yield ids[j], ids[hits[0]]


def near_duplicate_pairs(records: Iterable[tuple[str, str]], cfg: DedupConfig) -> dict[str, str]:
    """In-process near-duplicate detection over (note_id, text): {duplicate id: dup_of id}.

    The same algorithm as the distributed path (band buckets, sorted members, smallest verified
    earlier match, smallest dup_of over buckets), for tests and small corpora.
    """
    bands, rows = cfg.lsh_params()
    buckets: dict[int, list[tuple[str, np.ndarray]]] = {}
    for note_id, text in records:
        sig = minhash_signature(text, cfg)
        if sig is None:
            continue
        for key in band_keys(sig, bands, rows):
            buckets.setdefault(key, []).append((note_id, sig))
    found: dict[str, str] = {}
    for members in buckets.values():
        if len(members) < 2:
            continue
        members.sort(key=lambda m: m[0])
        ids = [m[0] for m in members]
        sigs = np.stack([m[1] for m in members])
        for dup, of in _bucket_pairs(ids, sigs, cfg.threshold, cfg.max_bucket_size):
            if dup not in found or of < found[dup]:
                found[dup] = of
    return found


# ---------------------------------------------------------------------------------------------
# Ray Data functions (module level so they pickle by reference)


def shuffle_partitions(ds: "ray.data.Dataset", requested: int | None) -> int:
    """Partitions for a hash shuffle: as asked, else the block count of a materialized input."""
    from ray.data import DataContext
    from ray.data.dataset import MaterializedDataset

    if requested:
        return requested
    cap = DataContext.get_current().default_hash_shuffle_parallelism
    if isinstance(ds, MaterializedDataset):
        return max(1, min(cap, ds.num_blocks()))
    return cap


def _note_keys(batch: pa.Table, cfg: DedupConfig) -> pa.Table:
    import pyarrow.compute as pc

    alive = batch.select(["note_id", "text", STATUS_COLUMN]).filter(
        pc.fill_null(pc.equal(batch[STATUS_COLUMN].cast(pa.string()), STATUS_OK), False)
    )
    ids, exact, sigs = [], [], []
    for note_id, text in zip(alive["note_id"].to_pylist(), alive["text"].to_pylist()):
        text = text if isinstance(text, str) else ""
        ids.append(note_id)
        exact.append(exact_key(text))
        sig = minhash_signature(text, cfg) if cfg.near else None
        sigs.append(None if sig is None else sig.tobytes())
    return pa.Table.from_arrays(
        [pa.array(ids, pa.string()), pa.array(exact, pa.string()), pa.array(sigs, pa.binary())], schema=_KEYS_SCHEMA
    )


def _exact_groups(block: pa.Table) -> pa.Table:
    """Whole exact-hash groups in, each row out with dup_of = its group's smallest note_id (null for it)."""
    t = block.sort_by([("exact_hash", "ascending"), ("note_id", "ascending")])
    n = t.num_rows
    hashes = np.asarray(t["exact_hash"].to_pylist(), dtype=object)
    ids = t["note_id"].to_pylist()
    first = np.r_[True, hashes[1:] != hashes[:-1]] if n else np.zeros(0, dtype=bool)
    start = np.maximum.accumulate(np.where(first, np.arange(n), 0)) if n else first
    dup_of = [None if first[i] else ids[start[i]] for i in range(n)]
    return pa.Table.from_arrays(
        [t["note_id"].cast(pa.string()), t["sig"].cast(pa.binary()), pa.array(dup_of, pa.string())],
        names=["note_id", "sig", DUP_OF],
    )


def _band_rows(batch: pa.Table, bands: int, rows: int) -> pa.Table:
    """(band key, note_id) for every band of every note with a signature: no signature, it is
    joined back only for notes that share a bucket (see the module docstring)."""
    keys, ids = [], []
    for note_id, raw in zip(batch["note_id"].to_pylist(), batch["sig"].to_pylist()):
        if raw is None:
            continue  # no words: exact dedup only
        for key in band_keys(np.frombuffer(raw, dtype=np.uint32), bands, rows):
            keys.append(key)
            ids.append(note_id)
    return pa.Table.from_arrays([pa.array(keys, pa.uint64()), pa.array(ids, pa.string())], schema=_BAND_KEYS_SCHEMA)


def _shared_buckets(block: pa.Table) -> pa.Table:
    """Whole band buckets in; the rows of buckets with two or more members out (the candidates)."""
    if block.num_rows < 2:
        return _BAND_KEYS_SCHEMA.empty_table()
    keys = block["band_key"].to_numpy()
    _, inverse, counts = np.unique(keys, return_inverse=True, return_counts=True)
    return block.filter(pa.array(counts[inverse] > 1)).cast(_BAND_KEYS_SCHEMA)


def _signatures(batch: pa.Table) -> pa.Table:
    """(note_id, signature) of the notes that have one: the right side of the candidates' join."""
    import pyarrow.compute as pc

    return batch.select(["note_id", "sig"]).filter(pc.is_valid(batch["sig"])).cast(_SIGS_SCHEMA)


def _verify_buckets(block: pa.Table, threshold: float, window: int) -> pa.Table:
    """Whole band buckets in; (note_id, dup_of) for each verified pair out."""
    dups, ofs = [], []
    if block.num_rows > 1:
        t = block.sort_by([("band_key", "ascending"), ("note_id", "ascending")])
        keys = t["band_key"].to_numpy()
        starts = np.flatnonzero(np.r_[True, keys[1:] != keys[:-1]])
        ends = np.r_[starts[1:], len(keys)]
        multi = [(s, e) for s, e in zip(starts, ends) if e - s > 1]
        if multi:
            ids_all = t["note_id"].to_pylist()
            sig_all = t["sig"].to_pylist()
            for s, e in multi:
                sigs = np.stack([np.frombuffer(x, dtype=np.uint32) for x in sig_all[s:e]])
                for dup, of in _bucket_pairs(ids_all[s:e], sigs, threshold, window):
                    dups.append(dup)
                    ofs.append(of)
    return pa.Table.from_arrays([pa.array(dups, pa.string()), pa.array(ofs, pa.string())], schema=_PAIRS_SCHEMA)


def _with_reason(batch: pa.Table, reason: str) -> pa.Table:
    return pa.Table.from_arrays(
        [
            batch["note_id"].cast(pa.string()),
            batch[DUP_OF].cast(pa.string()),
            pa.array([reason] * batch.num_rows, pa.string()),
        ],
        schema=_DUPS_SCHEMA,
    )


def _apply(batch: pa.Table) -> pa.Table:
    """Joined rows in; live rows with a duplicate match flipped to ``duplicate`` (pure Arrow)."""
    import pyarrow.compute as pc

    n = batch.num_rows
    if _DUP_REASON not in batch.column_names:  # a join partition with no right-side rows
        batch = batch.append_column(_DUP_REASON, pa.nulls(n, pa.string()))
    if DUP_OF not in batch.column_names:
        batch = batch.append_column(DUP_OF, pa.nulls(n, pa.string()))
    dup_reason = batch[_DUP_REASON].cast(pa.string())
    status = batch[STATUS_COLUMN].cast(pa.string())
    hit = pc.and_(pc.fill_null(pc.equal(status, STATUS_OK), False), pc.is_valid(dup_reason))
    new_status = pc.if_else(hit, pa.scalar(STATUS_DUPLICATE, pa.string()), status)
    new_reason = pc.if_else(hit, dup_reason, batch[REASON_COLUMN].cast(pa.string()))
    new_dup_of = pc.if_else(hit, batch[DUP_OF].cast(pa.string()), pa.scalar(None, pa.string()))
    for name, values in ((STATUS_COLUMN, new_status), (REASON_COLUMN, new_reason), (DUP_OF, new_dup_of)):
        batch = batch.set_column(batch.column_names.index(name), pa.field(name, pa.string()), values)
    return batch.select([c for c in batch.column_names if c not in (DUP_OF, _DUP_REASON)] + [DUP_OF])


def _add_empty_dup_of(batch: pa.Table) -> pa.Table:
    if DUP_OF in batch.column_names:
        batch = batch.drop_columns([DUP_OF])
    return batch.append_column(pa.field(DUP_OF, pa.string()), pa.nulls(batch.num_rows, pa.string()))


def _with_rows(ds: "ray.data.Dataset", n_rows: int) -> "ray.data.Dataset":
    """Re-cut a small materialized table into blocks that each hold rows (hence a schema): Ray keeps
    empty blocks without columns, and its join fails on a partition that receives only such blocks."""
    return ds.repartition(max(1, -(-n_rows // _DUP_ROWS_PER_BLOCK)))


def _near_duplicates(survivors: "ray.data.Dataset", cfg: DedupConfig, parts: int) -> "ray.data.Dataset | None":
    """(note_id, dup_of) of the near duplicates among ``survivors`` (rows with ``note_id``, ``sig``);
    None when no two notes share a band bucket."""
    from ray.data.aggregate import Min

    bands, rows = cfg.lsh_params()
    candidates = (
        survivors.map_batches(_band_rows, fn_kwargs={"bands": bands, "rows": rows}, batch_format="pyarrow")
        .repartition(parts, keys=["band_key"])
        # batch_size=None: one whole shuffle block per call; a key's rows are never split across blocks.
        .map_batches(_shared_buckets, batch_size=None, batch_format="pyarrow")
        .materialize()
    )
    n_candidates = candidates.count()
    if n_candidates == 0:
        return None
    sigs = survivors.map_batches(_signatures, batch_format="pyarrow")
    with_sigs = _with_rows(candidates, n_candidates).join(sigs, join_type="inner", num_partitions=parts, on=("note_id",))
    pairs = with_sigs.repartition(parts, keys=["band_key"]).map_batches(
        _verify_buckets,
        fn_kwargs={"threshold": cfg.threshold, "window": cfg.max_bucket_size},
        batch_size=None,
        batch_format="pyarrow",
    )
    return pairs.groupby("note_id", num_partitions=parts).aggregate(Min(DUP_OF, alias_name=DUP_OF))


def mark_duplicates(ds: "ray.data.Dataset", cfg: DedupConfig) -> "ray.data.Dataset":
    """Mark exact and near duplicates among live rows; same rows out, plus column ``dup_of``.

    ``ds`` is read twice (signatures, then the join), so pass a materialized dataset. The
    duplicate table is computed eagerly here; the returned join is lazy. Row order is not kept
    (the join hash-partitions by ``note_id``): sort before writing if file contents must repeat.
    """
    from ray.data.expressions import col

    if not (cfg.exact or cfg.near):
        return ds.map_batches(_add_empty_dup_of, batch_format="pyarrow")
    parts = shuffle_partitions(ds, cfg.num_partitions)
    keys = ds.map_batches(_note_keys, fn_kwargs={"cfg": cfg}, batch_format="pyarrow")

    dup_tables = []
    if cfg.exact:
        grouped = (
            keys.repartition(parts, keys=["exact_hash"])
            # batch_size=None: one whole shuffle block per call; a key's rows are never split across blocks.
            .map_batches(_exact_groups, batch_size=None, batch_format="pyarrow")
            .materialize()
        )
        exact_dups = grouped.filter(expr=col(DUP_OF).is_not_null())
        dup_tables.append(exact_dups.map_batches(_with_reason, fn_kwargs={"reason": EXACT_DUPLICATE}, batch_format="pyarrow"))
        survivors = grouped.filter(expr=col(DUP_OF).is_null())
    else:
        survivors = keys.materialize()  # read twice by the near pass (band keys, then signatures)

    if cfg.near:
        near = _near_duplicates(survivors, cfg, parts)
        if near is not None:
            dup_tables.append(near.map_batches(_with_reason, fn_kwargs={"reason": NEAR_DUPLICATE}, batch_format="pyarrow"))
    if not dup_tables:
        return ds.map_batches(_add_empty_dup_of, batch_format="pyarrow")

    dups = (dup_tables[0] if len(dup_tables) == 1 else dup_tables[0].union(*dup_tables[1:])).materialize()
    n_dups = dups.count()
    if n_dups == 0:  # nothing to join (and a join with an empty side has no schema to join on)
        return ds.map_batches(_add_empty_dup_of, batch_format="pyarrow")
    dups = _with_rows(dups, n_dups)
    joined = ds.join(dups, join_type="left_outer", num_partitions=parts, on=("note_id",))
    return joined.map_batches(_apply, batch_format="pyarrow")
