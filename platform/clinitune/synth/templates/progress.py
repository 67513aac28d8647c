"""Progress note: SOAP or problem-based, compact (a daily inpatient or clinic note)."""

from __future__ import annotations

from clinitune.phi.types import PhiType as P
from clinitune.synth import phi_formats as pf
from clinitune.synth import vocab
from clinitune.synth.builder import Section
from clinitune.synth.templates import common as c

TITLES = ("PROGRESS NOTE", "Hospital Medicine Progress Note", "Daily Progress Note", "Clinic Follow-up Note",
          "Internal Medicine Progress Note", "SOAP Note")
SUBJECTIVE = ("feels better today, ate breakfast", "c/o poor sleep overnight, no new complaints",
              "reports less SOB, ambulated in hall with PT", "still fatigued, denies CP/SOB",
              "had no acute events overnight", "has mild nausea this AM, tolerating PO", "reports pain better controlled",
              "states \"I'm ready to go home\"", "denies fevers, chills, N/V")


def build(ctx: c.NoteContext) -> list[Section]:
    rng, p = ctx.rng, ctx.patient
    soap = rng.random() < 0.5
    head = Section()
    r = rng.random()
    if r < 0.4:
        head.t(f"{rng.choice(TITLES)}\nDate: ")
        c.a_date(head, ctx, ctx.note_date, full=True)
        head.t("   Pt: ")
        c.patient_name(head, ctx)
        head.t("   MRN ").phi(pf.fmt_mrn(rng, p.mrn), P.MRN).t("\n")
    elif r < 0.75:
        head.t(f"{rng.choice(TITLES)} - ")
        c.a_date(head, ctx, ctx.note_date)
        head.t(" - ").phi(p.hospital_abbr or p.hospital, P.LOCATION).t(", Rm ")
        head.phi(f"{rng.randint(2, 12)}{rng.randint(1, 40):02d}{rng.choice(('', 'A', 'B'))}", P.LOCATION)
        head.t("\n")
    else:
        head.t(f"{rng.choice(TITLES).upper()} ")
        c.a_date(head, ctx, ctx.note_date, full=True)
        head.t("\n")
        c.patient_name(head, ctx)
        head.t(", ")
        c.header_age(head, ctx)
        head.t(f"{p.sex}, DOB ")
        c.a_date(head, ctx, p.dob, full=True)
        head.t("\n")
    if not head.segs[0].text.lower().startswith("clinic"):
        head.t(rng.choice((f"HD #{rng.randint(1, 9)}\n", "", f"Day {rng.randint(1, 6)} of admission\n", "")))
    sections = [head]

    subj = Section()
    subj.t("\nS: " if soap else rng.choice(("\nInterval History: ", "\nOvernight events: ", "\nSUBJECTIVE: ")))
    patient = Section()
    c.patient_ref(patient, ctx)
    subj.segs.extend(patient.segs)
    subj.t(f" {rng.choice(SUBJECTIVE)}.")
    if rng.random() < 0.35:
        subj.t(" Spoke with ")
        c.contact(subj, ctx, rng.choice(p.contacts))
        subj.t(" and updated on plan.")
    subj.t("\n")
    sections.append(subj)

    obj = Section()
    obj.t("O: " if soap else rng.choice(("\nOBJECTIVE:\n", "\nExam:\n", "\nPhysical exam:\n")))
    c.vitals(obj, ctx)
    obj.t("\n")
    keys = rng.sample(list(vocab.EXAM), rng.randint(3, 6))
    for k in keys:
        obj.t(f"{k.upper() if rng.random() < 0.5 else k.capitalize()}: {rng.choice(vocab.EXAM[k])}\n")
    sections.append(obj)
    lab = Section(required=False)
    c.labs(lab, ctx)
    lab.t("\n")
    sections.append(lab)
    if ctx.chronic and rng.random() < 0.4:
        sections.append(c.past_history(ctx))

    ap = Section()
    ap.t("A/P: " if soap else rng.choice(("\nASSESSMENT AND PLAN:\n", "\nAssessment/Plan:\n", "\nA&P:\n")))
    c.age_phrase(ap, ctx)
    ap.t(" with ")
    dxs = (*ctx.acute, *ctx.chronic)
    c.dx_series(ap, ctx, dxs[:2])
    ap.t(rng.choice((", improving.\n", ", here for f/u.\n", ".\n")))
    for e in dxs:
        ap.t(rng.choice(("# ", "- ", "")))
        c.dx(ap, ctx, e, narrative=rng.random() < 0.6)
        ap.t(f": {vocab.pick(rng, vocab.PLANS, e.code, vocab.GENERAL_PLANS)}\n")
    ap.t(rng.choice(("Dispo: ", "Disposition: ", "Plan: ")))
    ap.t(rng.choice(("likely home in 1-2 days", "continue inpatient care", "RTC 3 months", "pending PT eval")))
    ap.t(".\n")
    sections.append(ap)
    if rng.random() < 0.5:
        sections.append(c.social_history(ctx))
    sections.append(c.admin_block(ctx, rng.randint(1, 2), title=rng.random() < 0.5))
    sig = Section()
    sig.t("\n")
    c.signature(sig, ctx)
    sections.append(sig)
    return sections
