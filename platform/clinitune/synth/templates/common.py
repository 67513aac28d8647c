"""Pieces every note type uses: the note's context and writers for names, dates, ages,
diagnoses, vitals, labs, medications, signatures and the PHI-bearing lines of real notes."""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import date, timedelta

from faker import Faker

from clinitune.phi.types import PhiType as P
from clinitune.synth import phi_formats as pf
from clinitune.synth import vocab
from clinitune.synth.builder import Section
from clinitune.terminology.icd10 import ABBREVIATIONS, Icd10Entry, trimmed_name
from clinitune.synth.patient import Patient, Person


@dataclass(slots=True)
class NoteContext:
    rng: random.Random
    fake: Faker
    patient: Patient
    note_type: str
    note_date: date
    age: int
    author: Person  # first/last of the author; relation holds the credential ("MD", "RN")
    acute: tuple[Icd10Entry, ...]  # this visit's reason(s)
    chronic: tuple[Icd10Entry, ...]  # the patient's known problems mentioned in this note
    code_pool: int = 0  # > 0: imaging findings come from that many codes (see patient.pool_for)

    @property
    def she(self) -> str:
        return "she" if self.patient.sex == "F" else "he"

    @property
    def her(self) -> str:
        return "her" if self.patient.sex == "F" else "his"

    def other_person(self) -> Person:
        return Person(self.fake.first_name(), self.fake.last_name())

    def days_before(self, lo: int, hi: int) -> date:
        return self.note_date - timedelta(days=self.rng.randint(lo, hi))


# --- people -----------------------------------------------------------------------------------
def patient_name(sec: Section, ctx: NoteContext) -> None:
    p = ctx.patient
    sec.phi(pf.person_name(ctx.rng, p.first, p.last, p.middle), P.NAME)


def patient_ref(sec: Section, ctx: NoteContext) -> None:
    """How the narrative refers to the patient: 'Mr. Doe', 'Ms. DOE', 'Jane', 'pt', 'J.D.'."""
    p, r = ctx.patient, ctx.rng.random()
    if r < 0.35:
        sec.t("Mrs. " if p.sex == "F" and ctx.rng.random() < 0.3 else ("Ms. " if p.sex == "F" else "Mr. "))
        sec.phi(p.last if ctx.rng.random() < 0.85 else p.last.upper(), P.NAME)
    elif r < 0.45:
        sec.phi(p.first, P.NAME)
    elif r < 0.52:
        sec.phi(pf.initials(p.first, p.last, ctx.rng), P.NAME)
    else:
        sec.t(ctx.rng.choice(("pt", "the patient", "Pt", "patient")))


def clinician(sec: Section, ctx: NoteContext, person: Person, cred: str = "MD") -> None:
    r = ctx.rng.random()
    if r < 0.35:
        sec.t(ctx.rng.choice(("Dr. ", "Dr ", "DR. "))).phi(person.last, P.NAME)
    elif r < 0.55:
        sec.t("Dr. ").phi(f"{person.first} {person.last}", P.NAME)
    elif r < 0.8:
        sec.phi(f"{person.first} {person.last}", P.NAME).t(f", {cred}")
    elif r < 0.9:
        sec.phi(f"{person.first[0]}. {person.last}", P.NAME).t(f", {cred}")
    else:
        sec.phi(f"{person.last.upper()}, {person.first.upper()}", P.NAME).t(f" {cred}")


def contact(sec: Section, ctx: NoteContext, person: Person, with_phone: bool = True) -> None:
    """"pt's wife Mary (617-555-0101)" and variants."""
    rel = person.relation or "friend"
    lead = ctx.rng.choice((f"pt's {rel} ", f"{rel} ", f"{rel} ", f"{rel} (HCP) "))
    sec.t(lead)
    r = ctx.rng.random()
    if r < 0.5:
        sec.phi(person.first, P.NAME)
    elif r < 0.85:
        sec.phi(f"{person.first} {person.last}", P.NAME)
    else:
        sec.phi(f"{person.first.lower()}", P.NAME)
    if with_phone and person.phone:
        sec.t(ctx.rng.choice((" (", " at ", ", cell ", " ph "))).phi(person.phone, P.PHONE)
        sec.t(")" if sec.segs[-2].text == " (" else "")


# --- dates and ages ---------------------------------------------------------------------------
def a_date(sec: Section, ctx: NoteContext, d: date, *, full: bool = False) -> None:
    sec.phi(pf.any_date(ctx.rng, d, full=full), P.DATE)


def on_date(sec: Section, ctx: NoteContext, d: date) -> None:
    """'on 11/3', 'on Nov 3, 2019' or 'on the 3rd'."""
    if ctx.rng.random() < 0.15:
        sec.t("on the ").phi(pf.ordinal(d.day), P.DATE)
    else:
        sec.t("on ")
        a_date(sec, ctx, d)


def age_phrase(sec: Section, ctx: NoteContext) -> None:
    """'72 yo F', '93-year-old woman', '91 y/o male': the number is PHI AGE when over 89."""
    age, female = ctx.age, ctx.patient.sex == "F"
    style = ctx.rng.randrange(5)
    suffix = (f" yo {'F' if female else 'M'}", f"-year-old {'woman' if female else 'man'}",
              f" y/o {'female' if female else 'male'}", f" yo {'female' if female else 'male'}",
              f"{'F' if female else 'M'}")[style]
    if age > 89:
        sec.phi(str(age), P.AGE)
    else:
        sec.t(str(age))
    sec.t(suffix)


def header_age(sec: Section, ctx: NoteContext) -> None:
    if ctx.age > 89:
        sec.phi(str(ctx.age), P.AGE)
    else:
        sec.t(str(ctx.age))


# --- diagnoses --------------------------------------------------------------------------------
def _lower_first(s: str) -> str:
    first = s.split(" ", 1)[0]
    if len(first) > 1 and first[1:].islower():
        return s[0].lower() + s[1:]
    return s


def dx(sec: Section, ctx: NoteContext, entry: Icd10Entry, *, narrative: bool = False) -> None:
    """Name ``entry`` by its long name, CMS short name, trimmed form or a common abbreviation."""
    rng, abbrs = ctx.rng, ABBREVIATIONS.get(entry.code, ())
    r = rng.random()
    if narrative:
        if abbrs and r < 0.5:
            form = rng.choice(abbrs)
        elif r < 0.8:
            form = _lower_first(trimmed_name(entry.long_name))
        else:
            form = _lower_first(entry.long_name)
    else:
        if r < 0.5:
            form = entry.long_name
        elif r < 0.8:
            form = entry.short_name
        elif abbrs and r < 0.9:
            form = rng.choice(abbrs)
        else:
            form = trimmed_name(entry.long_name)
    sec.dx(form, entry.code)


def dx_series(sec: Section, ctx: NoteContext, entries, *, narrative: bool = True) -> None:
    entries = list(entries)
    for i, e in enumerate(entries):
        if i:
            sec.t(" and " if i == len(entries) - 1 else ", ")
        dx(sec, ctx, e, narrative=narrative)


# --- measurements -----------------------------------------------------------------------------
def vitals(sec: Section, ctx: NoteContext) -> None:
    rng = ctx.rng
    sick = bool(ctx.acute)
    hr = rng.randint(58, 118 if sick else 96)
    sbp = rng.randint(96, 172)
    dbp = rng.randint(50, min(104, sbp - 30))
    rr = rng.randint(12, 26 if sick else 18)
    spo2 = rng.randint(88 if sick else 93, 100)
    o2 = rng.choice(("RA", "RA", "2L NC", "3L NC", "room air"))
    if rng.random() < 0.5:
        temp = f"{rng.uniform(97.0, 101.8 if sick else 99.2):.1f}"
        unit = rng.choice(("", "F", "°F", " F"))
    else:
        temp = f"{rng.uniform(36.1, 38.8 if sick else 37.3):.1f}"
        unit = rng.choice(("C", "°C", " C"))
    style = rng.randrange(3)
    if style == 0:
        sec.t("T ").vital(temp).t(unit + " HR ").vital(str(hr)).t(" BP ").vital(f"{sbp}/{dbp}")
        sec.t(" RR ").vital(str(rr)).t(" SpO2 ").vital(f"{spo2}%").t(f" {o2}")
    elif style == 1:
        sec.t("VS: T ").vital(temp).t(unit + ", P ").vital(str(hr)).t(", BP ").vital(f"{sbp}/{dbp}")
        sec.t(", RR ").vital(str(rr)).t(", O2 sat ").vital(f"{spo2}%").t(f" on {o2}")
    else:
        sec.t("Temp ").vital(temp).t(unit + " | HR ").vital(str(hr)).t(" | BP ").vital(f"{sbp}/{dbp}")
        sec.t(" | RR ").vital(str(rr)).t(" | SpO2 ").vital(f"{spo2}%").t(f" {o2}")
        if rng.random() < 0.5:
            sec.t(" | Wt ").vital(f"{rng.uniform(48, 130):.1f}").t(" kg")


def labs(sec: Section, ctx: NoteContext) -> None:
    rng = ctx.rng
    items = [("Na", f"{rng.randint(126, 146)}"), ("K", f"{rng.uniform(3.1, 5.6):.1f}"), ("Cl", f"{rng.randint(95, 110)}"),
             ("HCO3", f"{rng.randint(17, 30)}"), ("BUN", f"{rng.randint(8, 62)}"), ("Cr", f"{rng.uniform(0.6, 3.4):.1f}"),
             ("Glu", f"{rng.randint(72, 340)}"), ("WBC", f"{rng.uniform(3.8, 19.5):.1f}"), ("Hgb", f"{rng.uniform(6.9, 15.2):.1f}"),
             ("Plt", f"{rng.randint(88, 420)}")]
    if rng.random() < 0.3:
        items.append(("trop", f"<{rng.choice(('0.01', '0.03'))}"))
    if rng.random() < 0.3:
        items.append(("lactate", f"{rng.uniform(0.8, 4.6):.1f}"))
    chosen = items if rng.random() < 0.4 else rng.sample(items, rng.randint(4, len(items)))
    sep = rng.choice((", ", " / ", "; "))
    sec.t(rng.choice(("Labs: ", "Labs notable for ", "LABS: ", "Pertinent labs: ")))
    for i, (name, val) in enumerate(chosen):
        if i:
            sec.t(sep)
        sec.t(f"{name} ").vital(val)


def med_lines(ctx: NoteContext, codes, k: int) -> list[str]:
    pool: list[str] = []
    for c in codes:
        pool.extend(vocab.by_prefix(vocab.MEDS, c))
    pool = list(dict.fromkeys(pool)) or list(vocab.GENERAL_MEDS)
    meds = ctx.rng.sample(pool, min(k, len(pool)))
    if len(meds) < k:
        meds += ctx.rng.sample(vocab.GENERAL_MEDS, k - len(meds))
    if ctx.rng.random() < 0.35:
        meds = [m.lower() for m in meds]
    return meds


def med_list(sec: Section, ctx: NoteContext, codes, k: int) -> None:
    meds, style = med_lines(ctx, codes, k), ctx.rng.randrange(3)
    for i, m in enumerate(meds, 1):
        sec.t((f"{i}. {m}\n", f"- {m}\n", f"{m}\n")[style])


def allergies(sec: Section, ctx: NoteContext) -> None:
    a = ctx.patient.allergies
    sec.t(ctx.rng.choice(("Allergies: ", "ALLERGIES: ", "All: ")))
    sec.t(", ".join(a) if a else ctx.rng.choice(("NKDA", "No known drug allergies", "NKA")))
    sec.t("\n")


def signature(sec: Section, ctx: NoteContext, *, time: bool = True) -> None:
    cred = ctx.author.relation or "MD"
    r = ctx.rng.random()
    if r < 0.35:
        sec.t(ctx.rng.choice(("Electronically signed by ", "Signed: ", "e-signed by ")))
        sec.phi(f"{ctx.author.first} {ctx.author.last}", P.NAME).t(f", {cred} on ")
        a_date(sec, ctx, ctx.note_date, full=True)
        if time:
            sec.t(f" {ctx.rng.randint(0, 23):02d}:{ctx.rng.randint(0, 59):02d}")
    elif r < 0.6:
        sec.t("-- ").phi(f"{ctx.author.first[0]}. {ctx.author.last}", P.NAME).t(f", {cred}")
    elif r < 0.8:
        sec.phi(f"{ctx.author.first} {ctx.author.last}", P.NAME).t(f" {cred}")
        sec.t(ctx.rng.choice((", pager ", " p", " #"))).phi(pf.pager_number(ctx.rng), P.PHONE)
    else:
        sec.t(ctx.rng.choice(("Dictated by: ", "Author: "))).phi(f"{ctx.author.last.upper()}, {ctx.author.first.upper()}", P.NAME)
        sec.t(f" {cred}  D: ")
        a_date(sec, ctx, ctx.note_date, full=True)
        sec.t("  T: ")
        a_date(sec, ctx, ctx.note_date + timedelta(days=ctx.rng.randint(0, 2)), full=True)
    sec.t("\n")


# --- PHI-bearing lines ------------------------------------------------------------------------
def line_address(sec: Section, ctx: NoteContext) -> None:
    p = ctx.patient
    sec.t(ctx.rng.choice(("Address: ", "Home address: ", "Lives at ")))
    sec.phi(p.street, P.LOCATION).t(", ").phi(p.city, P.LOCATION).t(", ")
    sec.phi(p.state_abbr if ctx.rng.random() < 0.7 else p.state, P.LOCATION).t(" ").phi(p.zip, P.ZIP).t("\n")


def line_phone(sec: Section, ctx: NoteContext) -> None:
    sec.t(ctx.rng.choice(("Home phone: ", "Pt phone ", "Best contact # ", "Tel: "))).phi(ctx.patient.phone, P.PHONE).t("\n")


def line_contact(sec: Section, ctx: NoteContext) -> None:
    sec.t(ctx.rng.choice(("Emergency contact: ", "HCP: ", "Contact: ", "Spoke with ")))
    contact(sec, ctx, ctx.rng.choice(ctx.patient.contacts))
    sec.t("\n")


def line_pcp(sec: Section, ctx: NoteContext) -> None:
    p = ctx.patient
    sec.t("PCP: ")
    clinician(sec, ctx, p.pcp)
    sec.t(", ").phi(p.clinic, P.LOCATION)
    rng = ctx.rng
    if rng.random() < 0.7:
        sec.t(rng.choice((", ph ", ", tel ", " (p) "))).phi(pf.phone_number(rng), P.PHONE)
    if rng.random() < 0.6:
        sec.t(rng.choice((", fax ", " (f) ", "; Fax: "))).phi(pf.phone_number(rng, ext=False), P.FAX)
    sec.t("\n")


def line_fax(sec: Section, ctx: NoteContext) -> None:
    sec.t(ctx.rng.choice(("Please fax results to ", "Copy faxed to PCP at ", "Fax #: ")))
    sec.phi(pf.phone_number(ctx.rng, ext=False), P.FAX).t("\n")


def line_email(sec: Section, ctx: NoteContext) -> None:
    sec.t(ctx.rng.choice(("Pt prefers email: ", "Email on file: ", "Instructions sent to "))).phi(ctx.patient.email, P.EMAIL).t("\n")


def line_ssn(sec: Section, ctx: NoteContext) -> None:
    sec.t(ctx.rng.choice(("SSN: ", "SS# ", "Social Security No. "))).phi(ctx.patient.ssn, P.SSN).t("\n")


def line_plan(sec: Section, ctx: NoteContext) -> None:
    p = ctx.patient
    sec.t(ctx.rng.choice(("Insurance: ", "Payer: ", "Coverage: "))).t(f"{p.plan} ")
    sec.t(ctx.rng.choice(("ID ", "member # ", "Member ID: ", "policy "))).phi(p.plan_id, P.HEALTH_PLAN).t("\n")


def line_account(sec: Section, ctx: NoteContext) -> None:
    sec.t(ctx.rng.choice(("Acct #: ", "Account No. ", "Billing acct "))).phi(pf.account_number(ctx.rng), P.ACCOUNT).t("\n")


def line_license(sec: Section, ctx: NoteContext) -> None:
    label, value = pf.license_number(ctx.rng)
    if label in ("driver's license", "DL#"):
        sec.t(f"ID verified with {label} ").phi(value, P.LICENSE).t("\n")
    else:
        sec.t(f"Prescriber {label}: ").phi(value, P.LICENSE).t("\n")


def line_vehicle(sec: Section, ctx: NoteContext) -> None:
    rng = ctx.rng
    if rng.random() < 0.5:
        sec.t(rng.choice(("MVC per EMS; vehicle VIN ", "Car involved in collision, VIN "))).phi(pf.vin(rng), P.VEHICLE)
    else:
        sec.t(rng.choice(("Pt's car (plate ", "Family parked in ED lot, plate "))).phi(pf.plate(rng), P.VEHICLE)
        sec.t(")" if sec.segs[-2].text.endswith("(plate ") else "")
    sec.t("\n")


def line_device(sec: Section, ctx: NoteContext) -> None:
    if ctx.patient.device:
        desc, serial = ctx.patient.device
    else:
        desc, prefix = ctx.rng.choice(pf.DEVICES)
        serial = pf.device_serial(ctx.rng, prefix)
    sec.t(f"{desc}, ").t(ctx.rng.choice(("serial # ", "SN: ", "s/n ", "model/serial "))).phi(serial, P.DEVICE).t("\n")


def line_url(sec: Section, ctx: NoteContext) -> None:
    sec.t(ctx.rng.choice(("Pt portal: ", "Education material: ", "Visit summary at "))).phi(pf.url(ctx.rng, ctx.patient.hospital_domain), P.URL).t("\n")


def line_ip(sec: Section, ctx: NoteContext) -> None:
    addr = pf.ipv4(ctx.rng) if ctx.rng.random() < 0.85 else pf.ipv6(ctx.rng)
    sec.t(ctx.rng.choice(("Telehealth session connected from IP ", "Video visit, pt IP address ", "Remote access logged from "))).phi(addr, P.IP).t("\n")


def line_biometric(sec: Section, ctx: NoteContext) -> None:
    kind, value = pf.biometric_id(ctx.rng)
    sec.t(f"Identity confirmed by {kind} (biometric ID ").phi(value, P.BIOMETRIC).t(")\n")


def line_other_id(sec: Section, ctx: NoteContext) -> None:
    label, value = pf.other_id(ctx.rng)
    sec.t(f"{label}: ").phi(value, P.ID).t("\n")


ADMIN_LINES = (
    (line_address, 10), (line_phone, 6), (line_contact, 8), (line_pcp, 8), (line_fax, 4), (line_email, 6),
    (line_ssn, 5), (line_plan, 7), (line_account, 6), (line_license, 5), (line_vehicle, 4), (line_device, 5),
    (line_url, 5), (line_ip, 4), (line_biometric, 4), (line_other_id, 6),
)


def admin_block(ctx: NoteContext, k: int, *, title: bool = True) -> Section:
    """An optional section of ``k`` distinct PHI-bearing administrative lines."""
    sec = Section(required=False)
    funcs = [f for f, _ in ADMIN_LINES]
    weights = [w for _, w in ADMIN_LINES]
    chosen: list = []
    while len(chosen) < k:
        f = ctx.rng.choices(funcs, weights)[0]
        if f not in chosen:
            chosen.append(f)
    if title:
        sec.t(ctx.rng.choice(("\nAdministrative:\n", "\n--\n", "\nContact/registration info:\n", "\n")))
    for f in chosen:
        f(sec, ctx)
    return sec


def social_history(ctx: NoteContext) -> Section:
    """Lives with / where, habits, past years and family history: NAME, LOCATION, YEAR, AGE."""
    rng, p = ctx.rng, ctx.patient
    sec = Section(required=False)
    sec.t(rng.choice(("\nSocial History: ", "\nSH: ", "\nSOCIAL HISTORY: ")))
    c = rng.choice(p.contacts)
    r = rng.random()
    if r < 0.4:
        sec.t(f"Lives with {c.relation} ").phi(c.first, P.NAME).t(" in ").phi(p.city, P.LOCATION).t(". ")
    elif r < 0.7:
        sec.t("Resides at ").phi(f"{ctx.fake.last_name()} {rng.choice(('Nursing & Rehab', 'Rehabilitation Center', 'Senior Living', 'Manor'))}", P.LOCATION)
        sec.t(", ").phi(p.city, P.LOCATION).t(". ")
    else:
        sec.t("Lives alone in ").phi(p.city, P.LOCATION).t(", ").phi(p.state_abbr, P.LOCATION).t("; daughter nearby. ")
    year = ctx.note_date.year - rng.randint(3, 40)
    r = rng.random()
    if r < 0.4:
        sec.t("Former smoker, quit in ").phi(pf.fmt_year(rng, year), P.YEAR).t(". ")
    elif r < 0.7:
        sec.t(rng.choice(("Retired machinist", "Retired teacher", "Works as a bus driver", "Former nurse")))
        sec.t(", moved here in ").phi(pf.fmt_year(rng, year), P.YEAR).t(". ")
    else:
        sec.t("No tobacco, occasional EtOH. ")
    if rng.random() < 0.5:
        rel = rng.choice(("Mother", "Father", "Grandmother", "Grandfather"))
        died = rng.randint(58, 101)
        sec.t(f"FHx: {rel} died at ")
        if died > 89:
            sec.phi(str(died), P.AGE)
        else:
            sec.t(str(died))
        sec.t(f" of {rng.choice(('MI', 'stroke', 'colon ca', 'CHF', 'old age'))}. ")
    sec.t("\n")
    return sec


def past_history(ctx: NoteContext) -> Section:
    """PMH with past surgeries dated by bare years ("s/p CCY '09")."""
    rng = ctx.rng
    sec = Section(required=False)
    sec.t(rng.choice(("\nPMH: ", "\nPast Medical History: ", "\nPMHx: ")))
    if ctx.chronic:
        dx_series(sec, ctx, ctx.chronic, narrative=rng.random() < 0.6)
    else:
        sec.t("none")
    if rng.random() < 0.6:
        surgery = rng.choice(("appendectomy", "CCY", "TKA", "hysterectomy" if ctx.patient.sex == "F" else "TURP",
                              "CABG", "hernia repair", "tonsillectomy"))
        sec.t(f"; s/p {surgery} ")
        if rng.random() < 0.5:
            sec.t("in ")
        sec.phi(pf.fmt_year(rng, ctx.note_date.year - rng.randint(2, 45)), P.YEAR)
    if rng.random() < 0.3:
        sec.t(rng.choice(("; last admission ", "; last colonoscopy ", "; last echo ")))
        sec.phi(pf.fmt_date(ctx.days_before(60, 1500), rng.choice(("Month Y", "m/d/y", "Mon d, Y"))), P.DATE)
    sec.t("\n")
    return sec
