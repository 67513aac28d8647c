"""Discharge summary: header, diagnoses, HPI, hospital course, meds, disposition, follow-up."""

from __future__ import annotations

from datetime import timedelta

from clinitune.phi.types import PhiType as P
from clinitune.synth import phi_formats as pf
from clinitune.synth import vocab
from clinitune.synth.builder import Section
from clinitune.synth.templates import common as c

SERVICES = ("Medicine", "Hospital Medicine", "Cardiology", "General Surgery", "Orthopedics", "Neurology", "MICU")


def _header(ctx: c.NoteContext, admit) -> Section:
    rng, p = ctx.rng, ctx.patient
    sec = Section()
    style = rng.randrange(3)
    if style == 0:
        sec.t("DISCHARGE SUMMARY\n\nPatient Name: ")
        c.patient_name(sec, ctx)
        sec.t("    MRN: ").phi(pf.fmt_mrn(rng, p.mrn), P.MRN).t("\nDOB: ")
        c.a_date(sec, ctx, p.dob, full=True)
        sec.t("    Age/Sex: ")
        c.header_age(sec, ctx)
        sec.t(f"{p.sex}\nAdmission Date: ")
        c.a_date(sec, ctx, admit, full=True)
        sec.t("    Discharge Date: ")
        c.a_date(sec, ctx, ctx.note_date, full=True)
        sec.t("\nAttending: ")
        c.clinician(sec, ctx, ctx.author)
        sec.t(f"    Service: {rng.choice(SERVICES)}\n")
    elif style == 1:
        sec.phi(p.hospital.upper(), P.LOCATION).t("\nDischarge Summary\nName: ")
        c.patient_name(sec, ctx)
        sec.t("  Unit No: ").phi(pf.fmt_mrn(rng, p.mrn), P.MRN).t("\nAdmit: ")
        c.a_date(sec, ctx, admit, full=True)
        sec.t("  D/C: ")
        c.a_date(sec, ctx, ctx.note_date, full=True)
        sec.t("\n")
    else:
        sec.t("Discharge Summary -- ").phi(p.hospital_abbr or p.hospital, P.LOCATION).t(" ")
        sec.phi(f"{ctx.fake.last_name()} {rng.randint(2, 14)}", P.LOCATION)
        sec.t("\nPt: ")
        c.patient_name(sec, ctx)
        sec.t(" | MRN ").phi(pf.fmt_mrn(rng, p.mrn), P.MRN).t(" | DOB ")
        c.a_date(sec, ctx, p.dob, full=True)
        sec.t("\nDates of service: ")
        c.a_date(sec, ctx, admit)
        sec.t(" - ")
        c.a_date(sec, ctx, ctx.note_date, full=True)
        sec.t("\n")
    return sec


def build(ctx: c.NoteContext) -> list[Section]:
    rng, p = ctx.rng, ctx.patient
    admit = ctx.note_date - timedelta(days=rng.randint(1, 9))
    principal = ctx.acute[0]
    sections = [_header(ctx, admit)]

    dxs = Section()
    dxs.t(rng.choice(("\nDISCHARGE DIAGNOSES:\n", "\nDischarge Diagnoses:\n", "\nPrincipal/Secondary Dx:\n")))
    for i, e in enumerate((*ctx.acute, *ctx.chronic), 1):
        dxs.t(f"{i}. ")
        c.dx(dxs, ctx, e)
        dxs.t("\n")
    sections.append(dxs)

    hpi = Section()
    hpi.t(rng.choice(("\nHISTORY OF PRESENT ILLNESS:\n", "\nHPI: ", "\nBrief HPI: ")))
    c.age_phrase(hpi, ctx)
    if ctx.chronic:
        hpi.t(rng.choice((" with PMH of ", " with h/o ", " w/ hx ")))
        c.dx_series(hpi, ctx, ctx.chronic[:3])
    hpi.t(rng.choice((" who presented to ", " who came to ", " BIBA to ")))
    hpi.phi(p.hospital if rng.random() < 0.6 else (p.hospital_abbr or p.hospital), P.LOCATION).t(" ED ")
    c.on_date(hpi, ctx, admit)
    hpi.t(f" with {vocab.pick(rng, vocab.SYMPTOMS, principal.code, vocab.GENERAL_SYMPTOMS)}. ")
    if rng.random() < 0.5:
        hpi.t("History obtained from ")
        c.contact(hpi, ctx, rng.choice(p.contacts), with_phone=False)
        hpi.t(". ")
    hpi.t("In the ED ")
    c.vitals(hpi, ctx)
    hpi.t(f". Found to have {rng.choice(('', 'likely '))}")
    c.dx(hpi, ctx, principal, narrative=True)
    hpi.t(" and admitted.\n")
    sections.append(hpi)
    sections.append(c.past_history(ctx))
    sections.append(c.social_history(ctx))

    course = Section()
    course.t(rng.choice(("\nHOSPITAL COURSE:\n", "\nHospital Course by problem:\n", "\nBrief Hospital Course:\n")))
    for e in (*ctx.acute, *ctx.chronic[:2]):
        course.t("# ")
        c.dx(course, ctx, e, narrative=True)
        course.t(f": {vocab.pick(rng, vocab.PLANS, e.code, vocab.GENERAL_PLANS)}.\n")
    if rng.random() < 0.4:
        course.t("Case discussed with ")
        c.clinician(course, ctx, ctx.other_person())
        course.t(f" ({rng.choice(('cardiology', 'GI', 'ID', 'renal', 'surgery'))}) ")
        c.on_date(course, ctx, admit + timedelta(days=1))
        course.t(".\n")
    sections.append(course)

    meds = Section(required=False)
    meds.t(rng.choice(("\nDISCHARGE MEDICATIONS:\n", "\nDischarge Meds:\n", "\nMedications on discharge:\n")))
    c.med_list(meds, ctx, [e.code for e in (*ctx.acute, *ctx.chronic)], rng.randint(3, 7))
    sections.append(meds)
    alg = Section(required=False)
    c.allergies(alg, ctx)
    sections.append(alg)

    dispo = Section()
    dispo.t(rng.choice(("\nDISPOSITION: ", "\nDischarge disposition: ", "\nDispo: ")))
    r = rng.random()
    if r < 0.5:
        dispo.t("Home with ")
        c.contact(dispo, ctx, rng.choice(p.contacts), with_phone=rng.random() < 0.5)
        dispo.t(". ")
    elif r < 0.8:
        dispo.t("To ").phi(f"{ctx.fake.last_name()} Rehabilitation Center", P.LOCATION).t(" in ").phi(ctx.fake.city(), P.LOCATION).t(". ")
    else:
        dispo.t("Home with VNA services. ")
    dispo.t(f"Condition: {rng.choice(('stable', 'good', 'fair', 'improved'))}.\n")
    sections.append(dispo)

    fu = Section(required=False)
    fu.t(rng.choice(("\nFOLLOW-UP:\n", "\nFollow up:\n", "\nAppointments:\n")))
    fu.t("PCP ")
    c.clinician(fu, ctx, p.pcp)
    fu.t(" at ").phi(p.clinic, P.LOCATION).t(" ")
    c.on_date(fu, ctx, ctx.note_date + timedelta(days=rng.randint(5, 21)))
    fu.t(", ").phi(pf.phone_number(rng), P.PHONE).t(".\n")
    sections.append(fu)
    sections.append(c.admin_block(ctx, rng.randint(1, 3)))
    sig = Section()
    sig.t("\n")
    c.signature(sig, ctx)
    sections.append(sig)
    return sections
