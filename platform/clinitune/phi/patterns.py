"""Pattern detectors: dates, years, ages, phone/fax/pager, e-mail, URL, IP, SSN and numbered ids.

Every detector is a compiled regular expression plus a context test, so bare clinical numbers
(doses, vitals, lab values, vent settings) stay untouched. Each returns ``(start, end, type,
score)`` tuples; the engine merges them with the name and place rules.
"""

from __future__ import annotations

import re
from typing import Iterator

from clinitune.phi.types import PhiType

Hit = tuple[int, int, str, float]

MONTHS_FULL = "january february march april may june july august september october november december"
MONTH_ABBR = "jan feb mar apr jun jul aug sep sept oct nov dec"
_MONTH_ALT = "|".join(sorted(MONTHS_FULL.split() + MONTH_ABBR.split(), key=len, reverse=True))
# Month words that are also ordinary words or clinical abbreviations: need a day, year or context.
AMBIGUOUS_MONTHS = frozenset({"may", "march", "mar", "dec", "jan", "sept", "sep", "aug", "jun", "oct"})
MONTH_NUM = {m: i + 1 for i, m in enumerate(MONTHS_FULL.split())}
MONTH_NUM.update({a: MONTH_NUM[f] for a, f in zip(
    MONTH_ABBR.split(), "january february march april june july august september september october november december".split())})

_I = re.IGNORECASE
_ORD = r"(?:st|nd|rd|th)"
_YEAR = r"(?:(?:19|20)\d\d|'\d\d|\d\d)"

# Units and words after a number that make it a measurement, not a date or year.
_UNITS = (
    r"(?:%|mg|mcg|g|gm|gms|gr|kg|lb|lbs|ml|cc|cm|mm|mmhg|cmh2o|l|lpm|liters?|units?|u|meq|mmol|min|mins|minutes?|"
    r"hrs?|hours?|h|d|days?|wks?|weeks?|mos?|months?|yrs?|years?|y/?o|yo|sec|secs|seconds?|x|kcal|cal|bpm|mv|"
    r"degrees?|o2|fio2|peep|ps|tabs?|caps?|pills?|puffs?|amps?|bags?|beats?|am|pm|gtt|mph|ft|in|inch|inches|fr|french|gauge|ga)"
)
_UNIT_AFTER = re.compile(r"[ \t]*" + _UNITS + r"\b", _I)

# m/d, m/d/yy, m/d/yyyy, m-d-yy(yy)
_NUM_DATE = re.compile(
    r"(?<![\w/.+='-])(?P<m>0?[1-9]|1[0-2])(?P<sep>[/-])(?P<d>0?[1-9]|[12]\d|3[01])"
    r"(?:(?P=sep)(?P<y>(?:19|20)\d\d|\d\d))?(?![\w/%]|\.\d|-\d|'?s\b|\d*\s*%)"
)
_FULL_DATE = re.compile(
    r"(?<![\d/.])(?:0?[1-9]|1[0-2])([/-])(?:0?[1-9]|[12]\d|3[01])(?:\1|\.)(?:(?:19|20)\d\d|\d\d)(?![\d/%]|\.\d)"
)
_STRONG_DATE_BEFORE = re.compile(
    r"\b(?:on|since|until|dated|post|after|before|extubation|intubation|surgery|or|admission|admitted|"
    r"placed|started|stopped|d/c'?d|dc'?d|done|performed|due|scheduled|planned|from)\s*:?\s*$",
    _I,
)
# two day-month dates run together ("treatments 10/03/10/04")
_TWO_DATES = re.compile(
    r"(?<![\w/.])(?:0?[1-9]|1[0-2])/(?:0[1-9]|[12]\d|3[01])/(?:0?[1-9]|1[0-2])/(?:0[1-9]|[12]\d|3[01])(?![\w/]|\.\d)"
)
# m/yy or m/yyyy ("8/84")
_MONTH_YEAR = re.compile(r"(?<![\w/.:+='-])(?:0?[1-9]|1[0-2])/(?:(?:19|20)\d\d|[3-9]\d)(?![\w/]|\.\d)")
# ISO 8601 / FHIR: date, optional time (T or a space) with seconds, fraction and zone, taken whole
# ("2021-05-18", "2021-05-18T09:30:00.000-05:00", "2021/5/18"); the day is matched longest first
# so the day's last digit never stays behind.
_ISO_TIME = r"(?:[T ](?:[01]\d|2[0-3]):[0-5]\d(?::[0-5]\d(?:[.,]\d{1,9})?)?(?:[ ]?(?:Z|UTC|[+-](?:[01]\d|2[0-3])(?::?[0-5]\d)?))?)?"
_ISO_DATE = re.compile(
    r"(?<![\w.+-])(?:1[89]|20)\d\d(?P<sep>[-/.])(?:1[0-2]|0?[1-9])(?P=sep)(?:3[01]|[12]\d|0?[1-9])"
    + _ISO_TIME + r"(?![\w]|[.:-]\d)"
)
# Basic format ("20210518", "20210518T093000Z") and the year-month of a FHIR partial date ("2021-05").
_ISO_BASIC = re.compile(
    r"(?<![\w.+-])(?:19|20)\d\d(?:0[1-9]|1[0-2])(?:0[1-9]|[12]\d|3[01])"
    r"(?:T(?:[01]\d|2[0-3])[0-5]\d(?:[0-5]\d)?(?:Z|[+-]\d{2}(?::?\d{2})?)?)?(?![\w-]|[.]\d)"
)
_ISO_YEAR_MONTH = re.compile(r"(?<![\w./+-])(?:19|20)\d\d-(?:0[1-9]|1[0-2])(?![\w/-]|[.:]\d)")
# Day first with a four-digit year when the day cannot be a month ("18/05/2021", "31-12-2019").
_DMY_NUM = re.compile(r"(?<![\w/.-])(?:1[3-9]|2\d|3[01])([/-])(?:0?[1-9]|1[0-2])\1(?:19|20)\d\d(?![\w/]|[.-]\d)")
_DMY_DOT = re.compile(r"(?<![\w.])(?:0?[1-9]|[12]\d|3[01])\.(?:0?[1-9]|1[0-2])\.(?:19|20)\d\d(?![\w.]\d)")
_MONTH_NAME_DATE = re.compile(
    r"(?<![\w'])(?P<mon>" + _MONTH_ALT + r")\.?(?![\w'])"
    r"(?P<day>\s*(?:the\s+)?\d{1,2}(?:" + _ORD + r"\b|(?!\d|\s*(?:" + _UNITS + r")\b)))?"
    r"(?P<year>,?\s*(?:of\s+)?(?:(?:19|20)\d\d|'\d\d|\d\d)(?![\w/]))?",
    _I,
)
_DAY_MONTH = re.compile(
    r"(?<![\w/.])(?:\d{1,2}\s*(?:->|-|to)\s*)?\d{1,2}" + _ORD + r"?(?:\s*|-)(?:of\s+)?(?:" + _MONTH_ALT + r")\b\.?"
    r"(?:(?:,?\s*|-)(?:(?:19|20)\d\d|'?\d\d)(?![\w/]))?",
    _I,
)
_ORDINAL_DAY = re.compile(
    r"\b(?:(?:the|on|of|since|until|by)\s+(\d{1,2}" + _ORD + r")(?=\s*(?:[.,;:!?)]|$|\n|at\b|and\b))"
    r"|(?:on|since|until|by|before|after)\s+the\s+(\d{1,2}" + _ORD + r")(?!\s*(?:day|time|dose|try|attempt|round|cycle|floor|"
    r"shift|unit|lumen|port|ics|intercostal|rib|toe|finger|digit|degree|percentile|week|hour|grade)))", _I)
_DATE_CONTEXT_BEFORE = re.compile(
    r"(?:\b(?:on|since|until|from|date|dated|dos|admitted|admit|adm|extubated|intubated|placed|started|"
    r"changed|discharged|transferred|due|done|performed|through|thru|by|of|began|begun|after|before|"
    r"d/c'?d?|dc'?d?|effective|scheduled|planned|for)\s*:?\s*)$",
    _I,
)
# Numbers after these words are settings, scores or strengths, not dates.
_NOT_DATE_BEFORE = re.compile(
    r"(?:\b(?:ps|peep|cpap|bipap|psv|imv|simv|vent|settings?|rate|strength|grade|gcs|score|scale|ratio|"
    r"murmur|pain|x|bp|abp|nbp|map|cvp|pap|hr|rr|sats?|ie|i:e|mae|moves?|ext|extremities|rass|"
    r"glasgow|apgar|tab|tabs|dose|d5|d5w|ns|lr)\s*:?\s*|[+=~*#@<>]\s*)$",
    _I,
)
_NOT_DATE_AFTER = re.compile(r"\s*(?:(?:ns|nss|normal\s+saline|strength|str|tab|tabs|dose|x|mmhg|cmh2o|ie|i:e|grade|power|motor|bilat|ext|peep|ps|psv|cpap|fio2|scale|pain)\b|%)", _I)
_PAIN = re.compile(r"\b(?:pain|cp|c/o|scale|rated|rates|discomfort|angina|ache|aching|hurts?|incisional)\b", _I)
_VENT = re.compile(r"\b(?:psv?|ips|peep|cpap|bipap|tv|fio2|co/ci|co|ci|vent|flowby|flow-by|wean(?:ed|ing)?|settings?|support|ventilation|mask|simv|imv|a/?c|trial)\b", _I)
_DAYS_IN_MONTH = (0, 31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31)
_EXAM = re.compile(r"\b(?:strength|motor|power|murmur|sem|hsm|systolic|diastolic|holosystolic|rue|lue|rle|lle|bue|ble|"
                   r"ue|le|grip|drift|reflex(?:es)?|dtr|rub|gallop|flexion|extension|deltoid|biceps|triceps|quad)\b", _I)
_COMMON_FRACTIONS = frozenset({(1, 2), (1, 3), (2, 3), (1, 4), (3, 4), (1, 8), (1, 5), (2, 5)})

_YEAR_APOS = re.compile(r"(?<![\w'])'(\d\d)(?![\w'])")
_YEAR_APOS_AFTER = re.compile(r"(?<![\w'/.-])(\d\d)'(?![\w'])")
_DECADE = re.compile(r"(?<![\w'])(?:(?:19|20)\d0|')?'?(?:19|20)?\d0'?s\b", _I)
_DECADE_STRICT = re.compile(r"(?<![\w'])(?:(?:19|20)\d0'?s|'\d0'?s)\b", _I)
_YEAR4 = re.compile(r"(?<![\w/.:+=~#-])((?:19|20)\d\d)(?![\w/:]|\.\d)")
_YEAR_BEFORE = re.compile(
    r"(?:\b(?:in|since|of|circa|year|yr|during|early|late|mid|spring|summer|fall|winter|born|dob|"
    r"mi|cabg|cva|tia|avr|mvr|ptca|pci|stent|stents|chole|appy|repair|surgery|ablation|pacer|ppm|aicd|redo|"
    r"cardioversion|dx|dx'd|diagnosed|nephrectomy|cholecystectomy|replacement|resection|amputation|"
    r"transplant|fracture|fx|ca|cancer|hx|s/p|pmh|pmhx|appendectomy|tonsillectomy|colectomy|hysterectomy|"
    r"mastectomy|tka|tha|turp|lap|laparoscopic|arthroscopy|ectomy|otomy|plasty|colonoscopy|echo|egd|mri|ct)\s*:?\s*)$",
    _I,
)
_EVENT_BEFORE_2DIGIT = re.compile(
    r"(?:\b(?:mi|cabg|cva|tia|avr|mvr|ptca|pci|stent|stents|chole|cholecystectomy|appy|appendectomy|repair|"
    r"surgery|ablation|pacer|ppm|aicd|redo|cardioversion|dx|dx'd|diagnosed|nephrectomy|replacement|"
    r"resection|amputation|transplant|hysterectomy|tah|bso|turp|lap|laminectomy|dvt|pe|chf|ca|cancer|"
    r"in|and)\s+)$",
    _I,
)
_HISTORY = re.compile(r"\b(?:pmh|pmhx|psh|hx|h/o|history|past\s+medical|s/p)\b", _I)

_AGE = re.compile(
    r"(?<![\w.])(?P<age>9\d|1[01]\d)(?:[ \t]*|-)(?:(?:y/o|y\.o\.?|yo|yrs?\.?(?:[\s-]*old)?|years?(?:[\s-]*old)?|"
    r"year-old|yr-old)(?![\w])|y?[mf]\b)",
    _I,
)
_AGE_PREFIX = re.compile(
    r"\b(?:age|aged|age:|ages|died\s+at|passed\s+away\s+at|deceased\s+at|expired\s+at|died\s+at\s+age)\s*(?P<age>9\d|1[01]\d)\b(?![./:-]\d)", _I)
_AGE_LINE_START = re.compile(
    r"(?:^|\n|\.\s{2,}|\s{3,})\s*(?P<age>9\d|1[01]\d)\s+(?=(?:yo|y/o|s/p|m|f|male|female|man|woman|gentleman|lady|w/|with|h/o)\b)",
    _I,
)

_PHONE = re.compile(
    r"(?<![\w])(?:\+?1[\s.-]?)?(?:\(\s*\d{3}\s*\)|\d{3})[\s.-]*\d{3}[\s.-]?\d{4}"
    r"(?:\s*(?:x|ext\.?|extension)\s*\d{1,6})?(?![\w-])",
    _I,
)
_PHONE_CONTEXT = re.compile(
    r"\b(?P<kw>pager|pgr|beeper|beep|pg|page|cell|cellphone|mobile|phone|ph|tel|telephone|home|work|office|"
    r"contact|fax|call|callback|number|no)\s*(?:#|number|no\.?|num|phone)?\s*[:#=]?\s*[-(]?\s*"
    r"(?P<num>\d{3,5}(?:[\s.-]\d{2,5}){0,3})(?![\w/]|\.\d)",
    _I,
)
# digit groups that only a phone number has: "(301 273 45166)", "301 944 5032"
_PHONE_GROUPS = re.compile(r"(?<![\w.,/-])\(?\d{3}\)?[ .]\d{3}[ .]\d{4,5}(?![\w.,/-]|\.\d)")
_FAX_BEFORE = re.compile(r"(?:\b(?:fax(?:ed)?|facsimile)\b[^\n\d]{0,25}|\(f\)\s*|\bf:\s*)$", _I)
_EXT = re.compile(r"\b(?:ext\.?|extension|x)\s*(\d{3,6})\b", _I)
_EMAIL = re.compile(r"(?<![\w.+-])[\w.+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)+", _I)
_URL = re.compile(
    r"\b(?:(?:https?|ftp)://[^\s<>\"')\]]+|www\.[^\s<>\"')\]]+|"
    r"[a-z0-9][a-z0-9-]*(?:\.[a-z0-9-]+)*\.(?:com|org|net|edu|gov|io|info|biz|us|health)(?:/[^\s<>\"')\]]*)?)",
    _I,
)
_IPV4 = re.compile(r"(?<![\w./])(?:(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)\.){3}(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)(?![\w.]\d)")
_IPV6 = re.compile(r"(?<![\w:])(?:[0-9a-f]{1,4}:){7}[0-9a-f]{1,4}(?![\w:])|(?<![\w:])(?:[0-9a-f]{1,4}:){1,6}:(?:[0-9a-f]{1,4})?(?![\w:])", _I)
_SSN = re.compile(r"(?<![\w-])(?!000|666|9\d\d)\d{3}([- ])(?!00)\d{2}\1(?!0000)\d{4}(?![\w-])")
_SSN_KW = re.compile(r"\b(?:ssn|ss#|social\s+security(?:\s+(?:number|no\.?|#))?)\s*[:#]?\s*(\d{3}[- ]?\d{2}[- ]?\d{4})\b", _I)
_ZIP = re.compile(
    r"(?:\b(?:AL|AK|AZ|AR|CA|CO|CT|DE|FL|GA|HI|ID|IL|IN|IA|KS|KY|LA|ME|MD|MA|MI|MN|MS|MO|MT|NE|NV|NH|NJ|NM|NY|NC|ND|OH|OK|OR|PA|RI|SC|SD|TN|TX|UT|VT|VA|WA|WV|WI|WY|DC|PR|Alabama|Alaska|Arizona|Arkansas|California|Colorado|Connecticut|Delaware|Florida|Georgia|"
    r"Hawaii|Idaho|Illinois|Indiana|Iowa|Kansas|Kentucky|Louisiana|Maine|Maryland|Massachusetts|Michigan|"
    r"Minnesota|Mississippi|Missouri|Montana|Nebraska|Nevada|New\s+Hampshire|New\s+Jersey|New\s+Mexico|New\s+York|"
    r"North\s+Carolina|North\s+Dakota|Ohio|Oklahoma|Oregon|Pennsylvania|Rhode\s+Island|South\s+Carolina|"
    r"South\s+Dakota|Tennessee|Texas|Utah|Vermont|Virginia|Washington|West\s+Virginia|Wisconsin|Wyoming)\.?,?\s+"
    r"|\bzip(?:\s*code)?\s*[:#]?\s*)(?P<zip>\d{5}(?:-\d{4})?)(?![\w-])",
)

_STREET = re.compile(
    r"(?<![\w.])\d{1,6}[A-Za-z]?\s+(?:[NSEW]\.?\s+)?(?:[A-Z][A-Za-z'-]+\s+){1,3}"
    r"(?:Street|St|Avenue|Ave|Road|Rd|Boulevard|Blvd|Drive|Dr|Lane|Ln|Way|Court|Ct|Place|Pl|Terrace|Ter|"
    r"Circle|Cir|Highway|Hwy|Parkway|Pkwy|Square|Sq|Trail|Trl|Pike|Alley|Row|Run)\b\.?"
    r"(?:,?\s*(?:Apt|Apartment|Unit|Suite|Ste|#)\.?\s*[A-Za-z0-9-]+)?"
)
# ALL CAPS or lower-case notes: no capital letters to lean on, so only unambiguous street words.
_STREET_UPPER = re.compile(
    r"(?<![\w.])\d{1,6}[A-Za-z]?\s+(?:[NSEW]\.?\s+)?(?:[A-Za-z][A-Za-z'-]+\s+){1,3}"
    r"(?:Street|St\.|Avenue|Ave\.?|Road|Boulevard|Blvd\.?|Lane|Drive|Highway|Parkway|Pkwy\.?)(?!\w)",
    _I,
)
_PO_BOX = re.compile(r"\bP\.?\s?O\.?\s+Box\s+\d+\b", _I)

ID_KEYWORDS: tuple[tuple[str, str], ...] = (
    (PhiType.MRN.value, r"mrn|mr\s*#|mr\s+no\.?|med(?:ical)?\s+rec(?:ord)?s?(?:\s+(?:number|no\.?|#))?|unit\s+no\.?|hospital\s+(?:number|no\.?)|chart\s*(?:#|number|no\.?)|patient\s+id"),
    (PhiType.HEALTH_PLAN.value, r"medicare|medicaid|member\s*(?:id)?|subscriber(?:\s+id)?|beneficiary(?:\s+id)?|insurance\s*(?:id)?|health\s*plan(?:\s*id)?|policy|group\s+(?:number|no\.?)|plan\s+id|hicn|mbi"),
    (PhiType.ACCOUNT.value, r"acct|account|billing|invoice"),
    (PhiType.LICENSE.value, r"licen[cs]e|lic\.?|dea|npi|certificate|cert\.?|board\s+cert(?:ification)?|dl|driver'?s?\s+licen[cs]e"),
    (PhiType.VEHICLE.value, r"vin|license\s+plate|plate|tag\s+(?:number|no\.?|#)|vehicle(?:\s+id)?"),
    (PhiType.DEVICE.value, r"serial|s/n|sn|device(?:\s+id)?|udi|model|lot|implant\s+id|pacemaker\s+id"),
    (PhiType.BIOMETRIC.value, r"biometric(?:\s+id)?|fingerprint(?:\s+id)?|retina(?:l)?\s+scan(?:\s+id)?|voice\s*print(?:\s+id)?|iris\s+scan(?:\s+id)?"),
    (PhiType.ID.value, r"ref|reference|case|claim|confirmation|order|requisition|specimen|accession|acc|id|ticket|record|encounter|visit|tracking"),
)
# One pass for every keyword-led identifier; more specific keywords first ("license plate" is a
# vehicle, "member ID" a health plan), the kind is the keyword group that matched.
_ID_ORDER = ("VEHICLE", "MRN", "HEALTH_PLAN", "ACCOUNT", "BIOMETRIC", "DEVICE", "LICENSE", "ID")
_ID_KIND_KW = dict(ID_KEYWORDS)
_ID_RE = re.compile(
    r"\b(?:" + "|".join(f"(?P<k_{k}>{_ID_KIND_KW[k]})" for k in _ID_ORDER) + r")"
    r"\s*(?:#|number|no\.?|num|id)?\s*[:#=]?\s*#?\s*(?P<id>(?=[A-Za-z0-9-]*\d)[A-Za-z0-9][A-Za-z0-9-]{2,})(?![\w-])",
    _I,
)
_LICENSE_PREFIXED = re.compile(r"\blicen[cs]e\s*(?:#|number|no\.?)?\s*[:#]?\s*(?P<id>[A-Z]{1,3}[- ]\d{4,})\b", _I)
_SERIAL = re.compile(
    r"\b(?:serial(?:\s+(?:number|no\.?))?|s/n|sn|model/serial|udi|serial\s*#)\s*[:#]?\s*#?\s*(?P<id>[A-Z0-9][A-Z0-9-]{4,})(?![\w-])"
)
_VIN = re.compile(r"\b(?=[A-HJ-NPR-Z0-9]*\d)(?=[A-HJ-NPR-Z0-9]*[A-HJ-NPR-Z])[A-HJ-NPR-Z0-9]{17}\b")
_HASH_ID = re.compile(r"(?<![\w#])#\s?(?P<id>[A-Za-z]{0,4}\d{5,}[A-Za-z0-9]*)\b")


def _unit_follows(text: str, end: int) -> bool:
    return bool(_UNIT_AFTER.match(text, end))


def dates(text: str) -> Iterator[Hit]:
    D, Y = PhiType.DATE.value, PhiType.YEAR.value
    for m in _NUM_DATE.finditer(text):
        s, e = m.span()
        before = text[max(0, s - 24):s]
        if m.group("y") is None:
            mo, dy = int(m.group("m")), int(m.group("d"))
            strong = _STRONG_DATE_BEFORE.search(before) is not None
            if dy > _DAYS_IN_MONTH[mo]:
                continue
            if m.group("sep") == "-":
                if strong and not _unit_follows(text, e) and re.match(r"\s*(?:[.,;:)]|$|\n|(?:for|at|and|to|with|in|when|until|by)\b)", text[e:e + 8], _I):
                    yield (s, e, D, 0.6)
                continue  # "3-5", "40-60": ranges unless a year follows or a date word precedes
            if _NOT_DATE_BEFORE.search(before) or _NOT_DATE_AFTER.match(text, e):
                continue
            dated = _DATE_CONTEXT_BEFORE.search(before) is not None
            if (mo, dy) in _COMMON_FRACTIONS and not dated:
                continue
            if dy == 10 and _PAIN.search(text[max(0, s - 40):min(len(text), e + 30)]):
                continue  # "c/o 5/10 chest pain": a pain score
            if mo == dy and not (strong and not re.search(r"\b(?:on|from|to)\s*$", before, _I)):
                continue  # "5/5" strength or pressure support over PEEP
            if dy in (4, 5, 6) and _EXAM.search(text[max(0, s - 30):min(len(text), e + 25)]):
                continue  # "4/5 RUE strength", "2/6 SEM": exam grades
            if dy <= 10 and not strong and _VENT.search(text[max(0, s - 30):min(len(text), e + 12)]):
                continue  # "PSV 10/5", "CPAP/PS (10/5)"
            yield (s, e, D, 0.85)
        else:
            yield (s, e, D, 0.97)
    for m in _FULL_DATE.finditer(text):
        yield (m.start(), m.end(), D, 0.9)
    for m in _MONTH_YEAR.finditer(text):
        s, e = m.span()
        if not _NOT_DATE_BEFORE.search(text[max(0, s - 24):s]) and not _NOT_DATE_AFTER.match(text, e):
            yield (s, e, D, 0.7)
    for rx in (_ISO_DATE, _DMY_DOT, _TWO_DATES, _DMY_NUM):
        for m in rx.finditer(text):
            yield (m.start(), m.end(), D, 0.97)
    for m in _ISO_BASIC.finditer(text):
        yield (m.start(), m.end(), D, 0.9 if "T" in m.group() else 0.7)
    for m in _ISO_YEAR_MONTH.finditer(text):
        yield (m.start(), m.end(), D, 0.75)
    for m in _MONTH_NAME_DATE.finditer(text):
        mon = m.group("mon").lower()
        has_day, has_year = m.group("day") is not None, m.group("year") is not None
        cap = m.group("mon")[0].isupper() and not m.group("mon").isupper()
        if mon in AMBIGUOUS_MONTHS and not (has_day or has_year):
            before = text[max(0, m.start() - 16):m.start()]
            if mon in ("dec", "mar") or (mon == "may" and not cap):
                continue
            if not re.search(r"\b(?:in|of|since|until|early|late|mid|by|last|next|during)\s+$", before, _I):
                continue
        if mon in ("dec", "mar", "may") and not has_year:
            if not re.match(r"[.,;:)\s]*(?:$|\n|[.,;:)])", text[m.end():m.end() + 3]) and not cap:
                continue  # "dec 20" (decreased), "may 2" (verb)
        score = 0.95 if (has_day or has_year) else 0.75
        yield (m.start(), m.end(), D, score)
    for m in _DAY_MONTH.finditer(text):
        yield (m.start(), m.end(), D, 0.9)
    for m in _ORDINAL_DAY.finditer(text):
        g = 1 if m.group(1) else 2
        yield (m.start(g), m.end(g), D, 0.6)
    # years
    for m in _YEAR_APOS.finditer(text):
        s, e = m.span()
        if not _unit_follows(text, e):
            yield (s, e, Y, 0.85)
    for m in _YEAR_APOS_AFTER.finditer(text):
        s, e = m.span()
        if _EVENT_BEFORE_2DIGIT.search(text[max(0, s - 30):s]) and not _unit_follows(text, e):
            yield (s, e, Y, 0.75)
    for m in _DECADE_STRICT.finditer(text):
        yield (m.start(), m.end(), Y, 0.85)
    for m in _YEAR4.finditer(text):
        s, e = m.span(1)
        y = int(m.group(1))
        if _unit_follows(text, e):
            continue
        after = text[e:e + 6]
        if re.match(r"\s*(?:-|->|to)\s*\d{4}\b", after, _I) and y < 1960:
            continue  # "1900 - 0700" shift times
        before = text[max(0, s - 24):s]
        if re.search(r"(?:\b(?:at|@|from|by|until|till|q|approx|~)\s*|[@~])$", before, _I):
            continue
        if _YEAR_BEFORE.search(before) or 1960 <= y <= 1999 or (1930 <= y <= 1959 and re.search(r"\b(?:in|since|born)\s+$", before, _I)):
            yield (s, e, Y, 0.8)
        elif 2000 <= y <= 2039 and (re.search(r"\b(?:is|year|yr)\s+$", before, _I) or _YEAR_BEFORE.search(before)):
            yield (s, e, Y, 0.7)
    # two-digit years after a past event in a history line ("MI 92", "CVA in 94 and 00")
    for hist in _HISTORY.finditer(text):
        line_end = text.find("\n\n", hist.end())
        stop = min(len(text), hist.end() + 400, line_end if line_end >= 0 else len(text))
        for m in re.finditer(r"(?<![\w'./:-])(\d\d)(?![\w'/%:-]|\.\d)", text[hist.end():stop]):
            s, e = hist.end() + m.start(1), hist.end() + m.end(1)
            if _unit_follows(text, e) or re.match(r"\s*(?:x|/|-\s*\d)", text[e:e + 4], _I):
                continue
            if _EVENT_BEFORE_2DIGIT.search(text[max(0, s - 30):s]):
                yield (s, e, Y, 0.65)


def ages(text: str) -> Iterator[Hit]:
    for rx in (_AGE, _AGE_PREFIX, _AGE_LINE_START):
        for m in rx.finditer(text):
            yield (m.start("age"), m.end("age"), PhiType.AGE.value, 0.9)


def phones(text: str) -> Iterator[Hit]:
    P = PhiType.PHONE.value
    for m in _PHONE.finditer(text):
        kind = PhiType.FAX.value if _FAX_BEFORE.search(text[max(0, m.start() - 40):m.start()]) else P
        yield (m.start(), m.end(), kind, 0.95)
    for m in _PHONE_GROUPS.finditer(text):
        yield (m.start(), m.end(), P, 0.75)
    for m in _PHONE_CONTEXT.finditer(text):
        num = m.group("num")
        digits = sum(ch.isdigit() for ch in num)
        kw = m.group("kw").lower()
        if digits < 4 or (digits < 5 and kw in ("number", "no", "home", "work", "office", "call", "page")):
            continue
        if kw in ("number", "no", "home", "work", "office", "call", "page", "ph") and digits < 7:
            continue
        if _unit_follows(text, m.end("num")):
            continue
        kind = PhiType.FAX.value if kw == "fax" else P
        yield (m.start("num"), m.end("num"), kind, 0.85)


def identifiers(text: str) -> Iterator[Hit]:
    for m in _EMAIL.finditer(text):
        yield (m.start(), m.end(), PhiType.EMAIL.value, 0.99)
    for m in _URL.finditer(text):
        if "@" in text[max(0, m.start() - 1):m.start()]:
            continue  # the domain of an e-mail address
        yield (m.start(), m.end(), PhiType.URL.value, 0.9)
    for m in _IPV4.finditer(text):
        yield (m.start(), m.end(), PhiType.IP.value, 0.95)
    for m in _IPV6.finditer(text):
        if m.group().count(":") >= 3:
            yield (m.start(), m.end(), PhiType.IP.value, 0.9)
    for m in _SSN.finditer(text):
        yield (m.start(), m.end(), PhiType.SSN.value, 0.9)
    for m in _SSN_KW.finditer(text):
        yield (m.start(1), m.end(1), PhiType.SSN.value, 0.99)
    for m in _ZIP.finditer(text):
        yield (m.start("zip"), m.end("zip"), PhiType.ZIP.value, 0.85)
    for m in _ID_RE.finditer(text):
        kind = next(k for k in _ID_ORDER if m.group(f"k_{k}") is not None)
        ident = m.group("id")
        digits = sum(ch.isdigit() for ch in ident)
        if digits < 2 or _unit_follows(text, m.end("id")):
            continue
        if kind == PhiType.ID.value and digits < 4 and not ident[0].isdigit() and not re.search(
                r"(?:#|number|no\.?)\s*$", text[m.start():m.start("id")], _I):
            continue  # "ID: TMAX-99" is a section header, not an identifier
        yield (m.start("id"), m.end("id"), kind, 0.85)
    for m in _LICENSE_PREFIXED.finditer(text):
        yield (m.start("id"), m.end("id"), PhiType.LICENSE.value, 0.85)
    for m in _SERIAL.finditer(text):
        yield (m.start("id"), m.end("id"), PhiType.DEVICE.value, 0.85)
    for m in _VIN.finditer(text):
        yield (m.start(), m.end(), PhiType.VEHICLE.value, 0.8)
    for m in _HASH_ID.finditer(text):
        yield (m.start("id"), m.end("id"), PhiType.ID.value, 0.7)
    for m in _EXT.finditer(text):
        before = text[max(0, m.start() - 20):m.start()]
        if re.search(r"\d{4}[\s)]*$", before) or re.search(r"\b(?:call|phone|page|pager|at|reach)\b", before, _I):
            yield (m.start(1), m.end(1), PhiType.PHONE.value, 0.7)


def addresses(text: str) -> Iterator[Hit]:
    rx = _STREET if re.search(r"[a-z]", text) and re.search(r"[A-Z]", text) else _STREET_UPPER
    for m in rx.finditer(text):
        yield (m.start(), m.end(), PhiType.LOCATION.value, 0.85)
    for m in _PO_BOX.finditer(text):
        yield (m.start(), m.end(), PhiType.LOCATION.value, 0.9)


def all_patterns(text: str) -> Iterator[Hit]:
    yield from addresses(text)
    yield from dates(text)
    yield from ages(text)
    yield from phones(text)
    yield from identifiers(text)
