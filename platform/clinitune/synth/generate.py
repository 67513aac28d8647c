"""Generate synthetic clinical notes in-process: ``generate_note(seed, index)`` and ``iter_notes``.

Every note is a pure function of (seed, index, options): its patient, its role (an ordinary note,
an exact or near duplicate of an earlier note, or a malformed record) and its text. Record keys::

    note_id, patient_id, note_type, note_date (YYYY-MM-DD), author, sex ("F"/"M"), age, age_band,
    text, phi [{start, end, type}], icd10 [codes], dx_spans [{start, end, code}], dup_of, dup_kind

``phi`` spans are exact character offsets into ``text`` (end exclusive); ``icd10`` holds exactly
the codes that ``dx_spans`` locate in the text.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from functools import lru_cache
from typing import Iterator

from clinitune.errors import UserError
from clinitune.synth import malformed as mal
from clinitune.synth.builder import Seg, assemble, fit_sections
from clinitune.synth.dups import near_duplicate
from clinitune.synth.patient import BLOCK, Person, age_band, locate, make_patient, pool_for
from clinitune.synth.seeding import faker_for, rng_for, seed_tag
from clinitune.synth.templates import common, discharge, nursing, progress, radiology

NOTE_TYPES = ("discharge_summary", "progress_note", "nursing_note", "radiology_report")
_TYPE_WEIGHTS = (15, 35, 30, 20)
_BUILDERS = {"discharge_summary": discharge.build, "progress_note": progress.build,
             "nursing_note": nursing.build, "radiology_report": radiology.build}
_CREDENTIALS = {"discharge_summary": ("MD", "MD", "DO", "PA-C"), "progress_note": ("MD", "DO", "NP", "PA-C", "MD"),
                "nursing_note": ("RN", "RN", "RN, BSN", "LPN"), "radiology_report": ("MD",)}
ROLES = ("base", "exact", "near", "malformed")


@dataclass(frozen=True)
class SynthOptions:
    """Generation options; ``validated()`` turns bad values into one-line user errors."""

    dup_rate: float = 0.05
    near_dup_rate: float = 0.05
    malformed_rate: float = 0.0
    max_chars: int = 2500
    code_pool: int = 0  # > 0: draw chronic, acute and imaging diagnoses from that many codes each (0 = all)

    def validated(self) -> "SynthOptions":
        for name in ("dup_rate", "near_dup_rate", "malformed_rate"):
            v = getattr(self, name)
            if not isinstance(v, (int, float)) or not 0.0 <= v < 1.0:
                flag = "--" + name.replace("_", "-")
                raise UserError(f"{flag} is {v!r}, outside [0, 1).", fix=f"pass {flag} as a fraction such as 0.05.")
        total = self.dup_rate + self.near_dup_rate + self.malformed_rate
        if total >= 0.9:
            raise UserError(
                f"--dup-rate + --near-dup-rate + --malformed-rate is {total:.3g}, at least 0.9: too few ordinary notes are left.",
                fix="lower the rates so that they add up to less than 0.9.",
            )
        if not isinstance(self.max_chars, int) or self.max_chars < 800:
            raise UserError(f"--max-chars is {self.max_chars!r}, below 800.", fix="pass --max-chars of 800 or more (default 2500).")
        if not isinstance(self.code_pool, int) or self.code_pool < 0 or 0 < self.code_pool < 8:
            raise UserError(f"--code-pool is {self.code_pool!r}; it must be 0 (all codes) or at least 8.",
                            fix="pass --code-pool 0, or 8 or more codes per role.")
        return self

    def as_dict(self) -> dict:
        return asdict(self)


def make_options(**opts) -> SynthOptions:
    unknown = set(opts) - set(SynthOptions.__dataclass_fields__)
    if unknown:
        raise TypeError(f"unknown synth option(s): {', '.join(sorted(unknown))}")
    return SynthOptions(**opts).validated()


def note_id(seed: int, index: int) -> str:
    return f"nt{seed_tag(seed)}-{index:09d}"


# --- roles ------------------------------------------------------------------------------------
def _raw_role(seed: int, index: int, o: SynthOptions) -> str:
    r = rng_for(seed, "role", index).random()
    if r < o.malformed_rate:
        return "malformed"
    if index % BLOCK == 0:  # the first note of a block has no earlier note to copy
        return "base"
    scale = BLOCK / (BLOCK - 1)  # so that the planted rates hold over all notes, first slots included
    r -= o.malformed_rate
    if r < o.dup_rate * scale:
        return "exact"
    if r < (o.dup_rate + o.near_dup_rate) * scale:
        return "near"
    return "base"


def _original_of(seed: int, index: int, o: SynthOptions) -> int | None:
    """An earlier ordinary note of the same block to copy, preferring the same patient."""
    start = index - index % BLOCK
    candidates = [j for j in range(start, index) if _raw_role(seed, j, o) == "base"]
    if not candidates:
        return None
    me = locate(seed, index)[0]
    same = [j for j in candidates if locate(seed, j)[0] == me]
    return rng_for(seed, "original", index).choice(same or candidates)


def _role(seed: int, index: int, o: SynthOptions) -> tuple[str, int | None, str | None]:
    role = _raw_role(seed, index, o)
    if role == "malformed":
        kinds = mal.MALFORMED_KINDS
        return role, None, kinds[rng_for(seed, "malformed", index).randrange(len(kinds))]
    if role in ("exact", "near"):
        original = _original_of(seed, index, o)
        if original is not None:
            return role, original, None
    return "base", None, None


# --- one ordinary note ------------------------------------------------------------------------
@lru_cache(maxsize=256)
def _base(seed: int, index: int, max_chars: int, code_pool: int = 0) -> tuple[dict, tuple[Seg, ...]]:
    ordinal, visit, n_visits = locate(seed, index)
    patient = make_patient(seed, ordinal, n_visits, code_pool)
    rng = rng_for(seed, "note", index)
    fake = faker_for(seed, "note", index)
    note_type = rng.choices(NOTE_TYPES, _TYPE_WEIGHTS)[0]
    note_date = patient.visit_dates[visit]
    age = patient.age_on(note_date)
    author = Person(fake.first_name(), fake.last_name(), rng.choice(_CREDENTIALS[note_type]))
    acute_pool = pool_for("acute", patient.sex, code_pool)
    first = rng.choice(acute_pool)
    acute: tuple = (first,)
    if rng.random() < 0.3:  # a second, unrelated acute problem
        acute += (rng.choice([e for e in acute_pool if e.code[:3] != first.code[:3]]),)
    chronic = list(patient.chronic)
    if len(chronic) > 3:
        chronic = rng.sample(chronic, rng.randint(2, 4))
    chronic = tuple(e for e in chronic if e.code not in {a.code for a in acute})
    ctx = common.NoteContext(rng=rng, fake=fake, patient=patient, note_type=note_type, note_date=note_date,
                             age=age, author=author, acute=acute, chronic=chronic, code_pool=code_pool)
    segs = tuple(fit_sections(_BUILDERS[note_type](ctx), max_chars))
    record = _record(seed, index, patient.patient_id, note_type, note_date.isoformat(),
                     f"{author.first} {author.last}, {author.relation}", patient.sex, age, segs)
    return record, segs


def _record(seed, index, patient_id, note_type, note_date, author, sex, age, segs) -> dict:
    asm = assemble(list(segs))
    return {
        "note_id": note_id(seed, index),
        "patient_id": patient_id,
        "note_type": note_type,
        "note_date": note_date,
        "author": author,
        "sex": sex,
        "age": age,
        "age_band": age_band(age),
        "text": asm.text,
        "phi": asm.phi,
        "icd10": sorted({d["code"] for d in asm.dx}),
        "dx_spans": asm.dx,
        "dup_of": None,
        "dup_kind": None,
    }


def _copy(record: dict) -> dict:
    out = dict(record)
    for key in ("phi", "dx_spans"):
        out[key] = [dict(s) for s in record[key]]
    out["icd10"] = list(record["icd10"])
    return out


def _generate(seed: int, index: int, o: SynthOptions) -> tuple[dict, str | None]:
    role, original, kind = _role(seed, index, o)
    if role == "base":
        return _copy(_base(seed, index, o.max_chars, o.code_pool)[0]), None
    if role == "malformed":
        record = _copy(_base(seed, index, o.max_chars, o.code_pool)[0])
        return mal.corrupt_record(record, kind, rng_for(seed, "corrupt", index)), kind
    base, segs = _base(seed, original, o.max_chars, o.code_pool)
    if role == "exact":
        record = _copy(base)
    else:
        edited = near_duplicate(list(segs), rng_for(seed, "near", index))
        record = _record(seed, original, base["patient_id"], base["note_type"], base["note_date"],
                         base["author"], base["sex"], base["age"], edited)
    record["note_id"] = note_id(seed, index)
    record["dup_of"] = base["note_id"]
    record["dup_kind"] = role
    return record, None


def generate_note(seed: int, index: int, **opts) -> dict:
    """Note ``index`` of the run seeded ``seed`` (a dict; see the module doc for its keys).

    For a malformed record this is the record before any line-level fault (broken JSON, invalid
    UTF-8) is applied; ``note_line`` gives the exact bytes written.
    """
    if index < 0:
        raise ValueError("index must be >= 0")
    return _generate(int(seed), index, make_options(**opts))[0]


def note_line(seed: int, index: int, options: SynthOptions) -> tuple[bytes, dict, str | None]:
    """(JSONL line as written, record, malformed kind or None) for note ``index``."""
    record, kind = _generate(int(seed), index, options)
    line = mal.encode_record(record)
    if kind in ("broken_json", "invalid_utf8"):
        line = mal.corrupt_line(line, kind, rng_for(seed, "line", index))
    return line, record, kind


def iter_notes(n: int, seed: int, **opts) -> Iterator[dict]:
    """Notes 0..n-1 of the run seeded ``seed``, in order."""
    o = make_options(**opts)
    for i in range(n):
        yield _generate(int(seed), i, o)[0]
