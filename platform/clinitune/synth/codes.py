"""The ICD-10-CM codes the note generator draws from.

``generation_subset(role)`` derives the few hundred common, clinically plausible codes for a role:
the *rules* (which prefixes, how many per prefix, which names to skip) live in ``_SUBSET_RULES``
below; every code and name comes from the CMS table (:mod:`clinitune.terminology.icd10`).
"""

from __future__ import annotations

from functools import lru_cache

from clinitune.terminology.icd10 import Icd10Entry, load_icd10_table

# --- the generation subset ---------------------------------------------------------------------
# role -> ((code prefix, how many codes at most), ...). "chronic" codes fill problem lists and past
# history, "acute" codes are reasons for admission or a visit, "imaging" codes are what a radiology
# impression can conclude. Within a prefix the generic codes ("..., unspecified", "without
# complications") win, then the shortest names: the common codes before their rare variants.
_SUBSET_RULES: dict[str, tuple[tuple[str, int], ...]] = {
    "chronic": (
        ("I10", 1), ("I25.10", 1), ("I25.2", 1), ("I48.0", 1), ("I48.91", 1), ("I48.20", 1), ("I48.92", 1), ("I50.22", 1), ("I50.32", 1),
        ("I50.42", 1), ("I50.9", 1), ("I35.0", 1), ("I27.20", 1), ("I73.9", 1), ("E11.9", 1),
        ("E11.65", 1), ("E11.22", 1), ("E11.40", 1), ("E11.42", 1), ("E10.9", 1), ("E78.5", 1), ("E78.0", 1),
        ("E78.2", 1), ("E03.9", 1), ("E05.90", 1), ("E66.9", 1), ("E66.01", 1), ("E66.3", 1), ("E55.9", 1), ("N18", 7),
        ("N40.0", 1), ("J44.9", 1), ("J45.909", 1), ("J45.4", 1), ("J84.10", 1), ("K21.9", 1), ("K21.00", 1),
        ("K74.6", 2), ("K70.30", 1), ("F32.9", 1), ("F32.A", 1), ("F32.1", 1), ("F33.1", 1), ("F41.9", 1), ("F41.1", 1), ("F41.0", 1), ("F17.210", 1),
        ("F10.20", 1), ("F20.9", 1), ("G47.33", 1), ("G30.9", 1), ("F03.90", 1), ("G20.A1", 1),
        ("G40.909", 1), ("G35", 1), ("M17.11", 1), ("M17.12", 1), ("M17.0", 1), ("M16.11", 1), ("M16.12", 1), ("M81.0", 1), ("M10.9", 1), ("D64.9", 1),
        ("M06.9", 1), ("B20", 1), ("D50.9", 1), ("D63.1", 1), ("C50.91", 2), ("C61", 1),
        ("C18.9", 1), ("Z79.01", 1), ("Z79.4", 1), ("Z95.0", 1), ("Z99.2", 1),
    ),
    "acute": (
        ("J18", 3), ("A41.9", 1), ("A41.51", 1), ("A41.01", 1), ("N39.0", 1), ("N17", 2),
        ("J44.1", 1), ("I21.4", 1), ("I21.11", 1), ("I63.9", 1), ("I63.50", 1), ("I50.23", 1),
        ("I50.33", 1), ("I50.21", 1), ("I26.99", 1), ("I26.09", 1), ("I82.40", 3), ("K57.32", 1),
        ("K80.0", 1), ("K81.0", 1), ("K85.90", 1), ("K92.2", 1), ("K92.1", 1), ("K92.0", 1), ("L03.115", 1), ("L03.116", 1), ("L03.113", 1), ("J96.0", 2),
        ("E87.1", 1), ("E87.6", 1), ("E87.2", 1), ("D62", 1), ("R07.9", 1), ("R07.89", 1),
        ("R55", 1), ("R06.02", 1), ("R10.9", 1), ("R10.1", 1), ("R10.31", 1), ("U07.1", 1),
        ("S72.00", 2), ("E86.0", 1), ("R41.82", 1), ("F05", 1), ("K35.80", 1), ("K56.60", 1),
        ("I95.9", 1), ("G93.41", 1), ("E11.65", 1), ("E10.10", 1), ("I48.91", 1), ("J45.901", 1),
        ("K29.70", 1), ("A08.4", 1), ("N10", 1), ("I61.9", 1), ("R56.9", 1), ("F10.23", 1),
    ),
    "imaging": (
        ("J18.9", 1), ("J18.1", 1), ("J90", 1), ("J93.9", 1), ("J93.11", 1), ("I26.99", 1),
        ("K80.20", 1), ("N20.0", 1), ("N20.1", 1), ("I63.9", 1), ("S72.00", 2), ("K57.32", 1),
        ("K35.80", 1), ("K56.60", 1), ("C34.11", 1), ("C34.12", 1), ("C34.31", 1), ("J98.11", 1), ("I71.4", 1),
        ("R91.1", 1), ("R91.8", 1), ("I61.9", 1), ("M48.06", 1), ("K76.0", 1), ("N13.30", 1),
        ("S22.3", 2), ("J81.0", 1), ("I51.7", 1), ("K85.90", 1), ("N28.1", 1),
    ),
}

_SKIP_WORDS = (
    "subsequent encounter", "sequela", "pregnancy", "childbirth", "puerperium", "newborn",
    "trimester", "neonatal", "perinatal", "open fracture", "unspecified whether",
)

ROLES = tuple(_SUBSET_RULES)


def _usable(entry: Icd10Entry) -> bool:
    name = entry.long_name.lower()
    if not name or len(name) > 90 or any(w in name for w in _SKIP_WORDS):
        return False
    if entry.code.startswith("S") and not entry.code.endswith("A"):  # injuries: initial encounter only
        return False
    return True


@lru_cache(maxsize=1)
def _by_category() -> dict[str, tuple[Icd10Entry, ...]]:
    groups: dict[str, list[Icd10Entry]] = {}
    for e in load_icd10_table():
        groups.setdefault(e.code[:3], []).append(e)
    return {k: tuple(v) for k, v in groups.items()}


def _generic(entry: Icd10Entry) -> bool:
    name = entry.long_name.lower()
    return "unspecified" in name or "without complication" in name or "uncomplicated" in name


@lru_cache(maxsize=None)
def generation_subset(role: str) -> tuple[Icd10Entry, ...]:
    """The codes the note generator draws for ``role`` ("chronic", "acute" or "imaging")."""
    if role not in _SUBSET_RULES:
        raise ValueError(f"unknown ICD-10 role '{role}'; use one of {', '.join(ROLES)}")
    by_category = _by_category()
    chosen: dict[str, Icd10Entry] = {}
    for prefix, cap in _SUBSET_RULES[role]:
        matches = [e for e in by_category.get(prefix[:3], ()) if e.code.startswith(prefix) and _usable(e)]
        matches.sort(key=lambda e: (not _generic(e), len(e.long_name), e.code))
        for e in matches[:cap]:
            chosen.setdefault(e.code, e)
    return tuple(sorted(chosen.values()))


def generation_codes() -> tuple[Icd10Entry, ...]:
    """Union of every role's subset (a few hundred codes), sorted by code."""
    merged = {e.code: e for role in ROLES for e in generation_subset(role)}
    return tuple(sorted(merged.values()))
