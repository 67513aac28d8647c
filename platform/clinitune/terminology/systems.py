"""Code systems: a code system is a table of valid codes.

``icd10cm`` is built in (every billable ICD-10-CM code of the CMS table, ``clinitune.terminology.icd10``);
``file:PATH`` reads a table from a file (one code per line, or a CSV/TSV with a ``code`` column),
e.g. a health system's own subset. ``load_code_system(name)`` returns a :class:`CodeSystem`
(sorted, normalised codes with prefix lookups: a prefix trie kept as a sorted array and searched
by bisection; and, where the table names its codes, the codes each name names: ICD-10-CM's long
and short names, a ``name`` or ``description`` column of a file table); ``check_code_system(name, where)`` validates a configured name. An unknown name or
an empty table is a one-line :class:`~clinitune.errors.ConfigError`. Terminology-constrained
decoding (``clinitune.constrain.codes``) is built on these tables.
"""

from __future__ import annotations

import bisect
import csv
import re
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Iterable, Mapping

from clinitune.errors import ConfigError

BUILTIN = ("icd10cm",)
FILE_PREFIX = "file:"
CODE_SHAPE = re.compile(r"^[A-Z][0-9][0-9A-Z](\.[0-9A-Z]{1,4})?$")


def name_key(name: str) -> str:
    """How a diagnosis name is compared with a table's names: upper case, single spaces, no edge punctuation."""
    return " ".join(str(name).upper().split()).strip(" ,;:.")


def normalize(code: str) -> str:
    """``e119`` / ``E11.9`` -> ``E11.9`` (upper case, a dot after the third character)."""
    c = str(code).strip().upper().replace(".", "")
    return c if len(c) <= 3 else f"{c[:3]}.{c[3:]}"


@dataclass(frozen=True)
class CodeSystem:
    """A code system: a name and its table of valid codes (normalised, sorted, unique)."""

    name: str
    codes: tuple[str, ...]
    #: ``name_key(name)`` -> the codes of that name (empty when the table names no codes)
    names: Mapping[str, tuple[str, ...]] = field(default_factory=dict, repr=False, compare=False)
    _set: frozenset = field(default=frozenset(), repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_set", frozenset(self.codes))

    def __contains__(self, code: str) -> bool:
        return code in self._set

    def __len__(self) -> int:
        return len(self.codes)

    def named(self, name: str) -> tuple[str, ...]:
        """The codes whose name in the table is ``name`` (compared by :func:`name_key`); () when none."""
        return self.names.get(name_key(name), ())

    def is_prefix(self, prefix: str) -> bool:
        """Some code starts with ``prefix`` (a trie walk, by bisection in the sorted table)."""
        i = bisect.bisect_left(self.codes, prefix)
        return i < len(self.codes) and self.codes[i].startswith(prefix)

    def has_extension(self, prefix: str) -> bool:
        """Some code is longer than ``prefix`` and starts with it."""
        i = bisect.bisect_right(self.codes, prefix)
        return i < len(self.codes) and self.codes[i].startswith(prefix)

    @property
    def fingerprint(self) -> str:
        import hashlib

        named = "\n".join(f"{k}\t{' '.join(v)}" for k, v in sorted(self.names.items()))
        return hashlib.sha256(("\n".join(self.codes) + "\n\n" + named).encode()).hexdigest()[:16]


def _read_table(path: Path, where: str) -> list[tuple[str, str]]:
    """(code, name) rows of a table file; the name is '' without a ``name``/``description`` column."""
    if not path.is_file():
        raise ConfigError(f"{where}: code table file '{path}' does not exist.",
                          fix="point it at a file with one code per line, or a CSV/TSV with a 'code' column.")
    text = path.read_text(encoding="utf-8")
    lines = [ln for ln in text.splitlines() if ln.strip()]
    if not lines:
        return []
    delim = "\t" if "\t" in lines[0] else ("," if "," in lines[0] else None)
    if delim is None:
        return [(ln.strip(), "") for ln in lines if ln.strip().lower() != "code"]
    rows = list(csv.DictReader(lines, delimiter=delim))
    header = [h.strip().lower() for h in (rows[0].keys() if rows else lines[0].split(delim))]
    if "code" not in header:
        raise ConfigError(f"{where}: code table '{path}' has no 'code' column (columns: {', '.join(header)}).",
                          fix="name the column of codes 'code', or write one code per line.")
    if not rows:
        return []
    key = next(k for k in rows[0] if k.strip().lower() == "code")
    label = next((k for k in rows[0] if k and k.strip().lower() in ("name", "description")), None)
    return [(str(r.get(key) or "").strip(), str(r.get(label) or "").strip() if label else "")
            for r in rows if str(r.get(key) or "").strip()]


def _validated(name: str, raw: Iterable[tuple[str, str]], where: str) -> CodeSystem:
    """A code system from (code, name) rows ('' = unnamed; a code may come with several names)."""
    rows = [(normalize(c), n) for c, n in raw if str(c).strip()]
    codes = sorted({c for c, _ in rows})
    if not codes:
        raise ConfigError(f"{where}: code system '{name}' has an empty code table.",
                          fix="give it a table with at least one code, or set it to null to decode without a constraint.")
    bad = [c for c in codes if not CODE_SHAPE.match(c)]
    if bad:
        raise ConfigError(f"{where}: code system '{name}' has {len(bad)} code(s) not shaped like ICD-10 codes "
                          f"(letter, digit, character, then up to 4 after a dot), e.g. '{bad[0]}'.",
                          fix="keep only ICD-10-shaped codes in the table.")
    names: dict[str, set[str]] = {}
    for code, label in rows:
        if key := name_key(label):
            names.setdefault(key, set()).add(code)
    return CodeSystem(name, tuple(codes), {k: tuple(sorted(v)) for k, v in names.items()})


@lru_cache(maxsize=8)
def _load(name: str) -> CodeSystem:
    if name == "icd10cm":
        from clinitune.terminology.icd10 import load_icd10_table

        return _validated(name, ((e.code, n) for e in load_icd10_table() for n in (e.long_name, e.short_name)), "code_system")
    return _validated(name, _read_table(Path(name[len(FILE_PREFIX):]).expanduser(), "code_system"), "code_system")


def check_code_system(name: str | None, where: str = "code_system") -> str | None:
    """Validate a configured code-system name (None passes); a one-line ConfigError otherwise."""
    if name is None:
        return None
    if not isinstance(name, str) or not (name in BUILTIN or (name.startswith(FILE_PREFIX) and len(name) > len(FILE_PREFIX))):
        raise ConfigError(f"{where}: unknown code system {name!r}.",
                          fix=f"use one of: {', '.join(BUILTIN)}, or file:PATH for a table of your own (or null for none).")
    try:
        load_code_system(name)
    except ConfigError as err:
        raise ConfigError(str(err).replace("code_system:", f"{where}:", 1)) from None
    return name


def load_code_system(name: str) -> CodeSystem:
    """The code system ``name`` (``icd10cm`` or ``file:PATH``), loaded once per process."""
    if name not in BUILTIN and not name.startswith(FILE_PREFIX):
        raise ConfigError(f"code_system: unknown code system {name!r}.",
                          fix=f"use one of: {', '.join(BUILTIN)}, or file:PATH for a table of your own.")
    return _load(name)
