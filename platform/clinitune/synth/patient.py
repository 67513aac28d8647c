"""Synthetic patients: one identity (name, DOB, MRN, address, contacts, problems) per patient.

Note indices are grouped into fixed blocks of ``BLOCK`` consecutive notes; each block is split
into patients of 1-6 notes by a generator seeded from (seed, block). So any note's patient, and
which of that patient's visits it is, follows from (seed, index) alone, and every note of a
patient sees the same identity and history.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import date, timedelta
from functools import lru_cache

from faker.providers.address.en_US import Provider as _UsAddress

from clinitune.synth import phi_formats as pf
from clinitune.synth.codes import generation_subset
from clinitune.terminology.icd10 import Icd10Entry
from clinitune.synth.seeding import faker_for, rng_for, seed_tag

BLOCK = 12
_VISIT_COUNTS = (1, 2, 3, 4, 5, 6)
_VISIT_WEIGHTS = (25, 25, 20, 15, 10, 5)
_AGE_BANDS = ((18, 39, 20), (40, 64, 33), (65, 89, 37), (90, 104, 10))
FIRST_DAY = date(2012, 1, 1)
LAST_DAY = date(2024, 12, 31)
_FEMALE_ONLY = ("female", "ovary", "uter", "cervix", "pregnan", "premenstrual")
_MALE_ONLY = ("prostat", "testi", "scrot", "male breast")
# Faker lists 50 states and 51 abbreviations (DC included): pair them up by name.
STATE_ABBR = dict(zip(_UsAddress.states, [a for a in _UsAddress.states_abbr if a != "DC"]))


@dataclass(frozen=True, slots=True)
class Person:
    first: str
    last: str
    relation: str = ""  # "wife", "son", ... for contacts
    phone: str = ""


@dataclass(frozen=True, slots=True)
class Patient:
    patient_id: str
    sex: str  # "F" | "M"
    first: str
    middle: str
    last: str
    dob: date
    mrn: str
    ssn: str
    street: str
    city: str
    state: str
    state_abbr: str
    zip: str
    phone: str
    email: str
    plan: str
    plan_id: str
    contacts: tuple[Person, ...]
    pcp: Person
    clinic: str
    hospital: str
    hospital_abbr: str
    hospital_domain: str
    chronic: tuple[Icd10Entry, ...]
    allergies: tuple[str, ...]
    visit_dates: tuple[date, ...]
    device: tuple[str, str] | None  # (description, serial) of an implanted/home device

    def age_on(self, d: date) -> int:
        return d.year - self.dob.year - ((d.month, d.day) < (self.dob.month, self.dob.day))


def age_band(age: int) -> str:
    if age < 40:
        return "18-39"
    if age < 65:
        return "40-64"
    if age < 90:
        return "65-89"
    return "90+"


def sex_allows(entry: Icd10Entry, sex: str) -> bool:
    name = entry.long_name.lower()
    if sex == "M" and any(w in name for w in _FEMALE_ONLY):
        return False
    if sex == "F" and any(w in name for w in _MALE_ONLY):
        return False
    return True


@lru_cache(maxsize=16)
def pool_for(role: str, sex: str, code_pool: int = 0) -> tuple[Icd10Entry, ...]:
    """The generation subset for ``role`` without codes that do not fit ``sex``.

    ``code_pool`` > 0 keeps only that many codes of the role, spread evenly over the subset (so
    still across organ systems): a smaller label space for demos and quick experiments.
    """
    subset = generation_subset(role)
    if 0 < code_pool < len(subset):
        subset = tuple(subset[i * len(subset) // code_pool] for i in range(code_pool))
    return tuple(e for e in subset if sex_allows(e, sex))


@lru_cache(maxsize=4096)
def block_layout(seed: int, block: int) -> tuple[int, ...]:
    """How many notes each patient of ``block`` has (sums to BLOCK)."""
    rng = rng_for(seed, "block", block)
    sizes: list[int] = []
    left = BLOCK
    while left > 0:
        k = min(left, rng.choices(_VISIT_COUNTS, _VISIT_WEIGHTS)[0])
        sizes.append(k)
        left -= k
    return tuple(sizes)


def locate(seed: int, index: int) -> tuple[int, int, int]:
    """(patient ordinal, visit number, visits of that patient) for note ``index``."""
    block, slot = divmod(index, BLOCK)
    start = 0
    for p, size in enumerate(block_layout(seed, block)):
        if slot < start + size:
            return block * BLOCK + p, slot - start, size
        start += size
    raise AssertionError("block layout does not cover the block")  # pragma: no cover


def _hospital(rng: random.Random, fake) -> tuple[str, str]:
    last, city, first = fake.last_name(), fake.city(), fake.first_name()
    name = rng.choice((
        f"{last} Memorial Hospital", f"{city} General Hospital", f"St. {first}'s Medical Center",
        f"{city} Regional Medical Center", f"{last} University Hospital", f"{last} Community Hospital",
    ))
    abbr = "".join(w[0] for w in name.replace("St. ", "S ").split() if w[0].isupper())
    return name, abbr


@lru_cache(maxsize=2048)
def make_patient(seed: int, ordinal: int, n_visits: int, code_pool: int = 0) -> Patient:
    rng = rng_for(seed, "patient", ordinal)
    fake = faker_for(seed, "patient", ordinal)
    sex = "F" if rng.random() < 0.52 else "M"
    first = fake.first_name_female() if sex == "F" else fake.first_name_male()
    last = fake.last_name()
    middle = rng.choice("ABCDEFGHJKLMNPRSTW")
    lo, hi, _ = rng.choices(_AGE_BANDS, [b[2] for b in _AGE_BANDS])[0]
    age0 = rng.randint(lo, hi)
    span = (LAST_DAY - FIRST_DAY).days - 400
    first_visit = FIRST_DAY + timedelta(days=rng.randint(0, span))
    dob = first_visit - timedelta(days=age0 * 365 + rng.randint(5, 360) + age0 // 4)
    offsets = sorted(rng.randint(0, 400) for _ in range(n_visits - 1))
    visit_dates = (first_visit, *(first_visit + timedelta(days=o) for o in offsets))
    spouse_sex = "M" if sex == "F" else "F"
    contacts = []
    for _ in range(rng.randint(1, 3)):
        relation = rng.choice(("wife" if spouse_sex == "F" else "husband", "daughter", "son", "sister", "brother",
                               "niece", "friend", "partner"))
        fem = relation in ("wife", "daughter", "sister", "niece") or (relation in ("friend", "partner") and rng.random() < 0.5)
        cf = fake.first_name_female() if fem else fake.first_name_male()
        cl = last if relation in ("wife", "husband", "daughter", "son") and rng.random() < 0.7 else fake.last_name()
        contacts.append(Person(cf, cl, relation, pf.phone_number(rng)))
    hospital, abbr = _hospital(rng, fake)
    state = fake.state()
    chronic_pool = pool_for("chronic", sex, code_pool)
    n_chronic = rng.randint(0, 2) if age0 < 40 else rng.randint(1, 5)
    chronic = []
    for e in rng.sample(chronic_pool, min(len(chronic_pool), n_chronic + 2)):  # one code per ICD-10 category
        if len(chronic) < n_chronic and all(e.code[:3] != o.code[:3] for o in chronic):
            chronic.append(e)
    chronic = tuple(chronic)
    device = None
    if any(e.code == "Z95.0" for e in chronic) or rng.random() < 0.12:
        desc, prefix = rng.choice(pf.DEVICES)
        device = (desc, pf.device_serial(rng, prefix))
    allergies = tuple(rng.sample(("penicillin", "sulfa", "codeine", "latex", "iodinated contrast", "shellfish",
                                  "lisinopril", "morphine"), rng.choice((0, 0, 0, 1, 1, 2))))
    plan = rng.choice(pf.HEALTH_PLANS) if age0 < 65 else rng.choice(("Medicare", "Medicare", *pf.HEALTH_PLANS))
    pcp = Person(fake.first_name(), fake.last_name())
    return Patient(
        patient_id=f"pt{seed_tag(seed)}-{ordinal:08d}",
        sex=sex, first=first, middle=middle, last=last, dob=dob,
        mrn=pf.mrn_value(rng), ssn=pf.ssn(rng),
        street=fake.street_address(), city=fake.city(), state=state, state_abbr=STATE_ABBR[state],
        zip=fake.zipcode_plus4() if rng.random() < 0.25 else fake.zipcode(),
        phone=pf.phone_number(rng),
        email=pf.email(rng, first, last, fake.free_email_domain()),
        plan=plan, plan_id=pf.health_plan_id(rng, plan),
        contacts=tuple(contacts), pcp=pcp,
        clinic=rng.choice((f"{fake.last_name()} Family Practice", f"{fake.city()} Community Health Center",
                           f"{fake.last_name()} Internal Medicine Associates")),
        hospital=hospital, hospital_abbr=abbr,
        hospital_domain=f"{abbr.lower() or 'hosp'}{rng.choice(('health.org', 'hospital.org', 'med.org'))}",
        chronic=chronic, allergies=allergies, visit_dates=visit_dates, device=device,
    )
