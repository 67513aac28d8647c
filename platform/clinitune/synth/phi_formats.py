"""PHI values in the many formats real notes use (names, dates, phones, identifiers ...).

Each function returns the exact string to insert; the caller records it as one PHI segment.
Titles and labels ("Dr.", "MRN:", "pager") stay outside the value, as in i2b2-style gold.
"""

from __future__ import annotations

import random
import string
from datetime import date

MONTHS = ("January", "February", "March", "April", "May", "June", "July", "August", "September",
          "October", "November", "December")
MON = tuple(m[:3] for m in MONTHS)
_DIG = string.digits
_UP = string.ascii_uppercase
_ALNUM = _UP + _DIG


def ordinal(n: int) -> str:
    suffix = "th" if 10 <= n % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(n % 10, "th")
    return f"{n}{suffix}"


DATE_STYLES = ("m/d/Y", "m/d/y", "m/d", "mm/dd/Y", "Y-m-d", "Mon d", "Month d, Y", "Mon d, Y",
               "d-Mon-Y", "Month d", "d Month Y", "m-d-Y", "mm/dd/yy", "Mon. d")


def fmt_date(d: date, style: str) -> str:
    m, dd, y = d.month, d.day, d.year
    return {
        "m/d/Y": f"{m}/{dd}/{y}",
        "m/d/y": f"{m}/{dd}/{y % 100:02d}",
        "m/d": f"{m}/{dd}",
        "mm/dd/Y": f"{m:02d}/{dd:02d}/{y}",
        "mm/dd/yy": f"{m:02d}/{dd:02d}/{y % 100:02d}",
        "Y-m-d": d.isoformat(),
        "Mon d": f"{MON[m - 1]} {dd}",
        "Mon. d": f"{MON[m - 1]}. {dd}",
        "Month d, Y": f"{MONTHS[m - 1]} {dd}, {y}",
        "Mon d, Y": f"{MON[m - 1]} {dd}, {y}",
        "d-Mon-Y": f"{dd:02d}-{MON[m - 1]}-{y}",
        "Month d": f"{MONTHS[m - 1]} {dd}",
        "d Month Y": f"{dd} {MONTHS[m - 1]} {y}",
        "m-d-Y": f"{m}-{dd}-{y}",
        "ordinal": ordinal(dd),
        "Month Y": f"{MONTHS[m - 1]} {y}",
    }[style]


def any_date(rng: random.Random, d: date, *, full: bool = False) -> str:
    """``d`` in a random real-world style; ``full`` keeps the year (headers, DOB)."""
    styles = ("m/d/Y", "mm/dd/Y", "Y-m-d", "Month d, Y", "Mon d, Y", "d-Mon-Y", "m/d/y", "mm/dd/yy") if full else DATE_STYLES
    return fmt_date(d, rng.choice(styles))


def fmt_year(rng: random.Random, year: int) -> str:
    """A bare year: "1984", "'84" or the decade "1980s"."""
    r = rng.random()
    if r < 0.45:
        return str(year)
    if r < 0.8:
        return f"'{year % 100:02d}"
    return f"{year // 10 * 10}s"


def _digits(rng: random.Random, n: int) -> str:
    return "".join(rng.choice(_DIG) for _ in range(n))


def phone_number(rng: random.Random, *, ext: bool = True) -> str:
    area, exch, line = rng.randint(201, 989), rng.randint(201, 999), rng.randint(0, 9999)
    r = rng.random()
    if r < 0.3:
        s = f"({area}) {exch}-{line:04d}"
    elif r < 0.55:
        s = f"{area}-{exch}-{line:04d}"
    elif r < 0.7:
        s = f"{area}.{exch}.{line:04d}"
    elif r < 0.8:
        s = f"{area} {exch} {line:04d}"
    elif r < 0.88:
        s = f"+1 {area} {exch} {line:04d}"
    elif r < 0.94:
        s = f"1-{area}-{exch}-{line:04d}"
    else:
        s = f"({area}){exch}-{line:04d}"
    if ext and rng.random() < 0.15:
        s += rng.choice((" x", " ext. ", " ext ", " X", "x")) + _digits(rng, rng.randint(2, 5))
    return s


def pager_number(rng: random.Random) -> str:
    r = rng.random()
    if r < 0.4:
        return _digits(rng, 5)
    if r < 0.7:
        return f"{rng.randint(1, 9)}-{_digits(rng, 4)}"
    return phone_number(rng, ext=False)


def ssn(rng: random.Random) -> str:
    area = rng.randint(1, 899)
    area = 667 if area == 666 else area
    s = (f"{area:03d}", f"{rng.randint(1, 99):02d}", f"{rng.randint(1, 9999):04d}")
    r = rng.random()
    return "-".join(s) if r < 0.7 else (" ".join(s) if r < 0.85 else "".join(s))


def mrn_value(rng: random.Random) -> str:
    """A patient's canonical MRN (digits); formats vary at each mention via ``fmt_mrn``."""
    return _digits(rng, rng.choice((7, 8, 9, 10)))


def fmt_mrn(rng: random.Random, mrn: str) -> str:
    r = rng.random()
    if r < 0.6 or len(mrn) < 8:
        return mrn
    if r < 0.75:
        return "-".join(mrn[i:i + 2] for i in range(0, len(mrn), 2))
    if r < 0.9:
        return f"{mrn[:3]}-{mrn[3:6]}-{mrn[6:]}"
    return f"{rng.choice(_UP)}{mrn}"


HEALTH_PLANS = ("Medicare", "Medicaid", "BCBS", "Blue Cross Blue Shield", "Aetna", "Cigna", "UnitedHealthcare",
                "Humana", "Tufts Health Plan", "Harvard Pilgrim", "Kaiser Permanente", "Anthem")


def health_plan_id(rng: random.Random, plan: str) -> str:
    if plan == "Medicare":  # Medicare Beneficiary Identifier: 1EG4-TE5-MK73
        letters = "ACDEFGHJKMNPQRTUVWXY"
        c = [str(rng.randint(1, 9)), rng.choice(letters), rng.choice(letters + _DIG), rng.choice(_DIG),
             rng.choice(letters), rng.choice(letters + _DIG), rng.choice(_DIG), rng.choice(letters),
             rng.choice(letters), rng.choice(_DIG), rng.choice(_DIG)]
        mbi = "".join(c)
        return f"{mbi[:4]}-{mbi[4:7]}-{mbi[7:]}" if rng.random() < 0.5 else mbi
    if plan == "Medicaid":
        return _digits(rng, 8) + rng.choice(_UP)
    prefix = "".join(rng.choice(_UP) for _ in range(3))
    return f"{prefix}{_digits(rng, 9)}" if rng.random() < 0.6 else f"{prefix[0]}{_digits(rng, 8)}-{_digits(rng, 2)}"


def account_number(rng: random.Random) -> str:
    r = rng.random()
    if r < 0.5:
        return _digits(rng, rng.choice((9, 10, 12)))
    if r < 0.8:
        return f"{_digits(rng, 2)}-{_digits(rng, 7)}"
    return f"A{_digits(rng, 8)}"


def license_number(rng: random.Random) -> tuple[str, str]:
    """(label, value): DEA registration, state medical/nursing licence or driver's licence."""
    r = rng.random()
    if r < 0.35:
        return "DEA #", f"{rng.choice('ABFM')}{rng.choice(_UP)}{_digits(rng, 7)}"
    if r < 0.6:
        return "state license", f"{rng.choice(('MD', 'RN', 'DO', 'PA'))}{rng.choice(('', '-', ' '))}{_digits(rng, rng.choice((5, 6, 7)))}"
    if r < 0.85:
        return "driver's license", f"{rng.choice(_UP)}{_digits(rng, rng.choice((7, 8, 12)))}"
    return "DL#", f"{rng.choice(_UP)}{_digits(rng, 3)}-{_digits(rng, 4)}-{_digits(rng, 4)}"


def vin(rng: random.Random) -> str:
    chars = "ABCDEFGHJKLMNPRSTUVWXYZ" + _DIG
    return "".join(rng.choice(chars) for _ in range(17))


def plate(rng: random.Random) -> str:
    r = rng.random()
    if r < 0.4:
        return f"{rng.randint(1, 9)}{''.join(rng.choice(_UP) for _ in range(3))}{_digits(rng, 3)}"
    if r < 0.7:
        return f"{''.join(rng.choice(_UP) for _ in range(3))}-{_digits(rng, 4)}"
    return f"{_digits(rng, 3)} {''.join(rng.choice(_ALNUM) for _ in range(3))}"


DEVICES = (("Medtronic Azure XT DR pacemaker", "RNB"), ("Boston Scientific ICD", "S/N "), ("St. Jude Assurity pacemaker", "PM"),
           ("Dexcom G6 CGM", "SN"), ("Tandem t:slim insulin pump", ""), ("ResMed AirSense 10 CPAP", "23"),
           ("Abbott HeartMate 3 LVAD", "HM3-"), ("Medtronic MiniMed 780G pump", "NG"), ("Cochlear implant", "CI"))


def device_serial(rng: random.Random, prefix: str) -> str:
    body = "".join(rng.choice(_ALNUM) for _ in range(rng.randint(6, 10)))
    if prefix.startswith("S/N"):
        prefix = ""
    return f"{prefix}{body}" if rng.random() < 0.7 else f"{prefix}{body[:4]}-{body[4:]}"


def ipv4(rng: random.Random) -> str:
    first = rng.choice((10, 172, 192, rng.randint(11, 223)))
    return f"{first}.{rng.randint(0, 255)}.{rng.randint(0, 255)}.{rng.randint(1, 254)}"


def ipv6(rng: random.Random) -> str:
    return ":".join(f"{rng.randint(0, 0xFFFF):x}" for _ in range(8))


def biometric_id(rng: random.Random) -> tuple[str, str]:
    kind = rng.choice(("fingerprint", "palm-vein scan", "retinal scan", "voiceprint", "facial recognition"))
    tag = {"fingerprint": "FP", "palm-vein scan": "PV", "retinal scan": "RS", "voiceprint": "VP", "facial recognition": "FR"}[kind]
    hexs = "".join(rng.choice("0123456789ABCDEF") for _ in range(8))
    return kind, (f"{tag}-{hexs}" if rng.random() < 0.6 else f"{tag}{hexs[:4]}-{hexs[4:]}")


def other_id(rng: random.Random) -> tuple[str, str]:
    """(label, value) for identifiers that fit no other kind: accessions, encounters, studies."""
    r = rng.random()
    if r < 0.3:
        return "Specimen accession #", f"{rng.choice('SHCM')}{rng.randint(10, 24)}-{_digits(rng, 5)}"
    if r < 0.55:
        return "Encounter #", f"E{_digits(rng, 9)}"
    if r < 0.75:
        return "Order #", _digits(rng, 8)
    if r < 0.9:
        return "Research subject ID", f"{''.join(rng.choice(_UP) for _ in range(3))}-{_digits(rng, 4)}"
    return "Case #", f"{_digits(rng, 2)}-{_digits(rng, 6)}"


def accession(rng: random.Random) -> str:
    r = rng.random()
    if r < 0.5:
        return f"RAD{_digits(rng, 8)}"
    if r < 0.8:
        return f"{rng.choice(('CT', 'MR', 'US', 'XR'))}-{_digits(rng, 7)}"
    return _digits(rng, 10)


def email(rng: random.Random, first: str, last: str, domain: str) -> str:
    f, l_ = first.lower(), last.lower().replace("'", "")
    user = rng.choice((f"{f}.{l_}", f"{f[0]}{l_}", f"{f}{l_}{rng.randint(1, 99)}", f"{l_}.{f[0]}", f"{f}_{l_}"))
    return f"{user}@{domain}"


def url(rng: random.Random, domain: str) -> str:
    r = rng.random()
    path = rng.choice(("mychart", "portal", "patient", "records", "pt"))
    if r < 0.4:
        return f"https://{path}.{domain}/{rng.choice(('visit', 'pt', 'summary'))}/{_digits(rng, 6)}"
    if r < 0.7:
        return f"www.{domain}/{path}"
    return f"http://{domain}/{path}?id={_digits(rng, 7)}"


def person_name(rng: random.Random, first: str, last: str, middle: str = "") -> str:
    """A full name as notes write it: 'Jane Doe', 'DOE, JANE', 'Doe, Jane M.', 'jane doe', 'J. Doe'."""
    r = rng.random()
    mi = f" {middle}." if middle else ""
    if r < 0.25:
        return f"{first} {last}"
    if r < 0.42:
        return f"{last.upper()}, {first.upper()}"
    if r < 0.56:
        return f"{last}, {first}{mi}"
    if r < 0.66:
        return f"{first}{mi} {last}"
    if r < 0.76:
        return f"{first.upper()} {last.upper()}"
    if r < 0.86:
        return f"{first.lower()} {last.lower()}"
    if r < 0.94:
        return f"{first[0]}. {last}"
    return f"{last.upper()},{first.upper()}"


def initials(first: str, last: str, rng: random.Random) -> str:
    return f"{first[0]}.{last[0]}." if rng.random() < 0.6 else f"{first[0]}{last[0]}"
