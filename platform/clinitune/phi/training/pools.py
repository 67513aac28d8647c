"""Surrogate pools: values of every PHI kind, from two disjoint halves.

The ``train`` pool feeds the augmented copies the tagger learns from; the ``eval`` pool builds the
re-surrogated evaluation variants. Their names and place words never meet: they come from
different Faker locales and from syllable generators with disjoint onsets, and every ``eval`` word
that the ``train`` pool (or the rule engine's lexicons) holds is dropped. So a re-surrogated note
tests what the engine reads from context, not what it has seen.

Names of many origins come from Faker's Latin-script locales (accents kept) and from a syllable
generator (made-up names such as "Zorblatt"); dates come in every machine and prose layout,
ISO 8601 with time and zone included; phones in US and international layouts; identifiers in
many shapes.
"""

from __future__ import annotations

import random
import string
import unicodedata
from datetime import date, timedelta
from functools import lru_cache

TRAIN_LOCALES = (
    "en_US", "en_GB", "en_IN", "en_NG", "es_MX", "es_ES", "pt_BR", "fr_FR", "de_DE", "it_IT", "pl_PL", "nl_NL",
    "sv_SE", "tr_TR", "vi_VN", "id_ID", "fil_PH", "cs_CZ", "hu_HU", "yo_NG", "sw", "da_DK",
)
EVAL_LOCALES = (
    "en_AU", "en_IE", "en_KE", "en_PH", "es_AR", "es_CO", "es_CL", "pt_PT", "fr_CA", "de_AT", "it_CH", "no_NO",
    "fi_FI", "ro_RO", "sk_SK", "sl_SI", "hr_HR", "lt_LT", "lv_LV", "et_EE", "ig_NG", "ha_NG", "zu_ZA", "tw_GH",
    "ga_IE", "az_AZ", "uz_UZ", "sq_AL", "mt_MT", "is_IS", "bs_BA",
)
# Syllable generators: disjoint onsets, so no made-up eval name can equal a made-up train name.
_ONSETS = {
    "train": ("b", "br", "c", "cl", "d", "dr", "k", "kr", "l", "m", "n", "r", "s", "st", "t", "tr", "v", "sh", "ch"),
    "eval": ("f", "fl", "g", "gr", "h", "j", "p", "ph", "pl", "qu", "w", "wr", "y", "z", "zh", "x", "gw", "thr"),
}
_NUCLEI = ("a", "e", "i", "o", "u", "ai", "ea", "ie", "ou", "oa", "y", "ee", "au")
_CODAS = ("", "", "", "n", "r", "l", "s", "t", "m", "nd", "rt", "ck", "ll", "tt", "x", "ng", "rg", "sk")
_ENDINGS = ("", "", "", "son", "ville", "berg", "ski", "ova", "ez", "ini", "ard", "ley", "ton", "ak", "ien", "oux", "ström")


def _latin(word: str) -> bool:
    return bool(word) and all(
        c in "'-" or (c.isalpha() and "LATIN" in unicodedata.name(c, "")) for c in word)


def _collect(locales: tuple[str, ...], seed: int) -> dict[str, list[str]]:
    from faker import Faker

    out: dict[str, set[str]] = {"first": set(), "last": set(), "city": set(), "street": set()}
    for i, loc in enumerate(locales):
        try:
            fake = Faker(loc)
        except (AttributeError, ModuleNotFoundError):  # a locale missing in this Faker version
            continue
        fake.seed_instance(seed + i)
        _canonical_lists(fake)
        for _ in range(300):
            for key, fn in (("first", fake.first_name), ("last", fake.last_name), ("city", fake.city)):
                try:
                    v = fn()
                except AttributeError:
                    continue
                if all(_latin(w) for w in v.split()) and 2 <= len(v) <= 30:
                    out[key].add(v)
        for _ in range(80):
            try:
                v = fake.street_name()
            except AttributeError:
                break
            if all(_latin(w) for w in v.split()) and len(v) <= 40:
                out["street"].add(v)
    return {k: sorted(v) for k, v in out.items()}


def _canonical_lists(fake) -> None:
    """Sort the providers' plain-list value tables. Some are built from a set at import time
    (it_IT's ``cities``), so their order, and the seeded draws from them, changed with Python's
    string-hash seed: the tagger's training data, and so its weights, differed between processes."""
    for provider in fake.providers:
        for name in {n for cls in type(provider).__mro__ for n in vars(cls)}:
            value = getattr(provider, name, None)
            if isinstance(value, list) and value and all(isinstance(v, str) for v in value):
                setattr(provider, name, sorted(value))


def _lexicon_words() -> frozenset[str]:
    from clinitune.phi.lexicons import load

    lx = load()
    return lx.first | lx.last | lx.places


@lru_cache(maxsize=2)
def _faker_values(split: str) -> dict[str, list[str]]:
    if split == "train":
        return _collect(TRAIN_LOCALES, 1000)
    train = _faker_values("train")
    seen = {w.lower() for vals in train.values() for v in vals for w in v.split()} | _lexicon_words()
    got = _collect(EVAL_LOCALES, 2000)
    return {k: [v for v in vals if not any(w.lower() in seen for w in v.split())] for k, vals in got.items()}


MONTHS = ("January", "February", "March", "April", "May", "June", "July", "August", "September", "October",
          "November", "December")
WEEKDAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")


def _ord(n: int) -> str:
    return f"{n}{'th' if 10 <= n % 100 <= 20 else {1: 'st', 2: 'nd', 3: 'rd'}.get(n % 10, 'th')}"


def _zone(rng: random.Random) -> str:
    return rng.choice(("Z", "+00:00", "-05:00", "-04:00", "+01:00", "+05:30", "-0800", "", ""))


# Every date layout met in notes and EHR exports.
DATE_LAYOUTS = {
    "m/d": lambda d, r: f"{d.month}/{d.day}",
    "mm/dd": lambda d, r: f"{d.month:02d}/{d.day:02d}",
    "m/d/yy": lambda d, r: f"{d.month}/{d.day}/{d.year % 100:02d}",
    "m/d/yyyy": lambda d, r: f"{d.month}/{d.day}/{d.year}",
    "mm/dd/yyyy": lambda d, r: f"{d.month:02d}/{d.day:02d}/{d.year}",
    "m-d-yy": lambda d, r: f"{d.month}-{d.day}-{d.year % 100:02d}",
    "mm-dd-yyyy": lambda d, r: f"{d.month:02d}-{d.day:02d}-{d.year}",
    "dd/mm/yyyy": lambda d, r: f"{d.day:02d}/{d.month:02d}/{d.year}",
    "dd.mm.yyyy": lambda d, r: f"{d.day:02d}.{d.month:02d}.{d.year}",
    "d.m.yy": lambda d, r: f"{d.day}.{d.month}.{d.year % 100:02d}",
    "iso": lambda d, r: d.isoformat(),
    "iso-time": lambda d, r: f"{d.isoformat()}T{r.randint(0, 23):02d}:{r.randint(0, 59):02d}:{r.randint(0, 59):02d}{_zone(r)}",
    "iso-ms": lambda d, r: f"{d.isoformat()}T{r.randint(0, 23):02d}:{r.randint(0, 59):02d}:{r.randint(0, 59):02d}.{r.randint(0, 999):03d}{_zone(r)}",
    "iso-space": lambda d, r: f"{d.isoformat()} {r.randint(0, 23):02d}:{r.randint(0, 59):02d}",
    "iso-basic": lambda d, r: f"{d.year}{d.month:02d}{d.day:02d}",
    "iso-basic-time": lambda d, r: f"{d.year}{d.month:02d}{d.day:02d}T{r.randint(0, 23):02d}{r.randint(0, 59):02d}{r.randint(0, 59):02d}Z",
    "yyyy/mm/dd": lambda d, r: f"{d.year}/{d.month:02d}/{d.day:02d}",
    "yyyy-mm": lambda d, r: f"{d.year}-{d.month:02d}",
    "mm/yyyy": lambda d, r: f"{d.month:02d}/{d.year}",
    "Mon d": lambda d, r: f"{MONTHS[d.month - 1][:3]} {d.day}",
    "Mon. d": lambda d, r: f"{MONTHS[d.month - 1][:3]}. {d.day}",
    "Month d": lambda d, r: f"{MONTHS[d.month - 1]} {d.day}",
    "Month dth": lambda d, r: f"{MONTHS[d.month - 1]} {_ord(d.day)}",
    "Month d, yyyy": lambda d, r: f"{MONTHS[d.month - 1]} {d.day}, {d.year}",
    "Mon d, yyyy": lambda d, r: f"{MONTHS[d.month - 1][:3]} {d.day}, {d.year}",
    "Weekday, Month d, yyyy": lambda d, r: f"{WEEKDAYS[d.weekday()]}, {MONTHS[d.month - 1]} {d.day}, {d.year}",
    "d Month yyyy": lambda d, r: f"{d.day} {MONTHS[d.month - 1]} {d.year}",
    "dth of Month": lambda d, r: f"{_ord(d.day)} of {MONTHS[d.month - 1]}",
    "d-Mon-yyyy": lambda d, r: f"{d.day:02d}-{MONTHS[d.month - 1][:3]}-{d.year}",
    "d-Mon-yy": lambda d, r: f"{d.day}-{MONTHS[d.month - 1][:3].upper()}-{d.year % 100:02d}",
    "dMonyyyy": lambda d, r: f"{d.day:02d}{MONTHS[d.month - 1][:3].upper()}{d.year}",
    "Month yyyy": lambda d, r: f"{MONTHS[d.month - 1]} {d.year}",
    "Mon-yy": lambda d, r: f"{MONTHS[d.month - 1][:3]}-{d.year % 100:02d}",
    "dth": lambda d, r: _ord(d.day),
}

PHONE_LAYOUTS = (  # P: a digit 2-9 (area and exchange codes), N: any digit
    "(PNN) PNN-NNNN", "PNN-PNN-NNNN", "PNN.PNN.NNNN", "PNNPNNNNNN", "+1 PNN PNN NNNN", "1-PNN-PNN-NNNN",
    "PNN-PNN-NNNN x1234", "(PNN)PNN-NNNN", "PNN-NNNN", "+44 20 NNNN NNNN", "+44 7NNN NNNNNN", "+49 30 NNNNNNN",
    "+33 1 NN NN NN NN", "+91 9NNNN NNNNN", "+61 4NN NNN NNN", "+52 55 NNNN NNNN", "+234 80N NNN NNNN",
    "0NNNN NNNNNN", "NNNN", "NNNNN", "#NNNN", "pNNNN",
)
ID_SHAPES = (
    "NNNNNNN", "NNNNNNNN", "NNNNNNNNNN", "NNN-NN-NNNN", "NN-NNNNNNN", "ANNNNNNN", "AANNNNNN", "AAA-NNNNNN",
    "MRN-NNNNNNNN", "NNNN-NNNN-NNNN", "ANN-NNN-NNNN", "AANNNANN", "NNNNNNNNNNNNNN", "AAANNNNNNNNN",
    "NAANANNAANN", "AN-NNNN-AN", "NNNNNA", "NNNNNNNNA",
)


class Pool:
    """Surrogate values of one half (``train`` or ``eval``), drawn with the caller's RNG."""

    def __init__(self, split: str):
        if split not in ("train", "eval"):
            raise ValueError("split must be 'train' or 'eval'")
        self.split = split
        self.values = _faker_values(split)
        self.onsets = _ONSETS[split]

    # --- names ----------------------------------------------------------------------------------
    def made_up(self, rng: random.Random) -> str:
        parts = [rng.choice(self.onsets) + rng.choice(_NUCLEI) + rng.choice(_CODAS) for _ in range(rng.randint(1, 3))]
        word = "".join(parts) + (rng.choice(_ENDINGS) if self.split == "train" else rng.choice(_ENDINGS[:3]))
        return word[:1].upper() + word[1:]

    def first(self, rng: random.Random) -> str:
        return self.made_up(rng) if rng.random() < 0.2 else rng.choice(self.values["first"])

    def last(self, rng: random.Random) -> str:
        return self.made_up(rng) if rng.random() < 0.25 else rng.choice(self.values["last"])

    def person(self, rng: random.Random) -> str:
        r = rng.random()
        if r < 0.55:
            return f"{self.first(rng)} {self.last(rng)}"
        if r < 0.7:
            return f"{self.first(rng)} {rng.choice(string.ascii_uppercase)}. {self.last(rng)}"
        if r < 0.8:
            return f"{self.last(rng)}, {self.first(rng)}"
        if r < 0.88:
            return f"{rng.choice(string.ascii_uppercase)}. {self.last(rng)}"
        if r < 0.94:
            return f"{self.first(rng)} {self.last(rng)}-{self.last(rng)}"
        return f"{self.first(rng)}{rng.randint(10, 999)} {self.last(rng)}{rng.randint(10, 999)}"  # Synthea style

    # --- places ---------------------------------------------------------------------------------
    def city(self, rng: random.Random) -> str:
        return self.made_up(rng) + rng.choice(("", "", "ton", "ville", " Falls", " Springs")) if rng.random() < 0.3 \
            else rng.choice(self.values["city"])

    def hospital(self, rng: random.Random) -> str:
        stem = rng.choice((self.last(rng), self.city(rng), f"St. {self.first(rng)}'s"))
        return rng.choice((
            "{} Hospital", "{} General Hospital", "{} Medical Center", "{} Memorial", "{} Regional Medical Center",
            "{} Rehab", "{} Nursing Home", "{} Community Hospital", "{} Health Center", "{} Clinic", "{}",
        )).format(stem)

    def abbreviation(self, rng: random.Random) -> str:
        core = "".join(rng.choice(string.ascii_uppercase) for _ in range(rng.randint(1, 3)))
        return core + rng.choice(("H", "MC", "GH", "MH", "RMC", "", ""))

    def street(self, rng: random.Random) -> str:
        if self.values["street"] and rng.random() < 0.7:
            name = rng.choice(self.values["street"])
        else:
            name = f"{self.last(rng)} {rng.choice(('Street', 'St', 'Ave', 'Road', 'Rd', 'Lane', 'Drive', 'Way', 'Blvd', 'Court'))}"
        return rng.choice(("{n} {s}", "{n} {s}, Apt {a}", "{s} {n}", "{n} {s} Suite {a}")).format(
            n=rng.randint(1, 9999), s=name, a=rng.randint(1, 999))

    def location(self, rng: random.Random) -> str:
        r = rng.random()
        if r < 0.3:
            return self.city(rng)
        if r < 0.55:
            return self.hospital(rng)
        if r < 0.7:
            return self.abbreviation(rng)
        if r < 0.85:
            return f"{self.last(rng)} {rng.randint(1, 12)}"  # a unit named after a person: "Quartermain 3"
        return self.street(rng)

    # --- dates and numbers ----------------------------------------------------------------------
    def a_date(self, rng: random.Random) -> date:
        return date(1930, 1, 1) + timedelta(days=rng.randint(0, 365 * 100))

    def date(self, rng: random.Random, layout: str | None = None) -> str:
        layout = layout or rng.choice(tuple(DATE_LAYOUTS))
        return DATE_LAYOUTS[layout](self.a_date(rng), rng)

    def year(self, rng: random.Random) -> str:
        y = rng.randint(1930, 2035)
        return rng.choice((str(y), str(y), f"'{y % 100:02d}", f"{y // 10 * 10}s"))

    def phone(self, rng: random.Random) -> str:
        return shaped(rng.choice(PHONE_LAYOUTS), rng)

    def identifier(self, rng: random.Random) -> str:
        return shaped(rng.choice(ID_SHAPES), rng)

    def email(self, rng: random.Random) -> str:
        user = f"{self.first(rng)}.{self.last(rng)}".lower()
        return f"{strip_accents(user).replace(' ', '')}{rng.choice(('', str(rng.randint(1, 99))))}@{rng.choice(('gmail.com', 'example.org', 'mail.net', 'hosp.org', 'yahoo.co.uk'))}"

    def value(self, kind: str, rng: random.Random) -> str:
        """A fresh value of ``kind`` in any layout."""
        if kind == "NAME":
            return self.person(rng) if rng.random() < 0.5 else (self.first(rng) if rng.random() < 0.5 else self.last(rng))
        if kind == "LOCATION":
            return self.location(rng)
        if kind == "DATE":
            return self.date(rng)
        if kind == "YEAR":
            return self.year(rng)
        if kind == "AGE":
            return str(rng.randint(90, 115))
        if kind in ("PHONE", "FAX"):
            return self.phone(rng)
        if kind == "EMAIL":
            return self.email(rng)
        if kind == "ZIP":
            return shaped(rng.choice(("NNNNN", "NNNNN-NNNN")), rng)
        if kind == "SSN":
            return shaped("NNN-NN-NNNN", rng)
        if kind == "URL":
            return f"{rng.choice(('https://', 'http://', 'www.', ''))}{strip_accents(self.last(rng)).lower()}{rng.choice(('.org', '.com', '.net', '.health'))}"
        if kind == "IP":
            return ".".join(str(rng.randint(1, 254)) for _ in range(4))
        return self.identifier(rng)


def shaped(shape: str, rng: random.Random) -> str:
    """``shape`` with A -> a capital letter, N -> a digit (the first digit of a run not 0), P -> 2-9."""
    out, prev_digit = [], False
    for c in shape:
        if c == "A":
            out.append(rng.choice(string.ascii_uppercase))
            prev_digit = False
        elif c == "N":
            out.append(str(rng.randint(0 if prev_digit else 1, 9)))
            prev_digit = True
        elif c == "P":
            out.append(str(rng.randint(2, 9)))
            prev_digit = True
        else:
            out.append(c)
            prev_digit = False
    return "".join(out)


def strip_accents(s: str) -> str:
    return "".join(c for c in unicodedata.normalize("NFKD", s) if not unicodedata.combining(c))
