"""Nursing note: shift assessment by system, terse, often lower case."""

from __future__ import annotations

from clinitune.phi.types import PhiType as P
from clinitune.synth import phi_formats as pf
from clinitune.synth import vocab
from clinitune.synth.builder import Section
from clinitune.synth.templates import common as c


def build(ctx: c.NoteContext) -> list[Section]:
    rng, p = ctx.rng, ctx.patient
    lower = rng.random() < 0.35
    head = Section()
    shift = rng.choice(("0700-1900", "1900-0700", "7a-7p", "7p-7a", "0700-1530", "day shift", "nights"))
    head.t(rng.choice(("Nursing Progress Note", "NURSING NOTE", "RN Shift Note", "Nursing Assessment")))
    head.t(f" {shift}\n")
    if rng.random() < 0.6:
        head.t("Date: ")
        c.a_date(head, ctx, ctx.note_date)
        head.t("  Pt: ")
        c.patient_name(head, ctx)
        if rng.random() < 0.5:
            head.t("  MRN ").phi(pf.fmt_mrn(rng, p.mrn), P.MRN)
        head.t("\n")
    sections = [head]

    intro = Section()
    c.age_phrase(intro, ctx)
    intro.t(rng.choice((" admitted ", " adm ", " admitted on ")))
    c.a_date(intro, ctx, ctx.days_before(0, 6))
    intro.t(" w/ ")
    c.dx(intro, ctx, ctx.acute[0], narrative=True)
    if ctx.chronic:
        intro.t(rng.choice(("; hx ", ". PMH: ")))
        c.dx_series(intro, ctx, ctx.chronic[:3])
    intro.t(".")
    if rng.random() < 0.4:
        intro.t(" On ").phi(f"{ctx.fake.last_name()} {rng.randint(2, 12)}", P.LOCATION).t(", rm ")
        intro.phi(str(rng.randint(1, 40)), P.LOCATION).t(".")
    intro.t("\n")
    sections.append(intro)

    body = Section()
    systems = list(vocab.NURSING)
    keep = [s for s in systems if rng.random() < 0.8] or systems[:3]
    for s in keep:
        text = rng.choice(vocab.NURSING[s])
        body.t(f"{s.lower() if lower else s}: {text.lower() if lower else text}\n")
    c.vitals(body, ctx)
    body.t("\n")
    sections.append(body)

    psych = Section(required=False)
    psych.t(rng.choice(("Psychosocial: ", "Family: ", "social: ")))
    r = rng.random()
    if r < 0.5:
        c.contact(psych, ctx, rng.choice(p.contacts))
        psych.t(rng.choice((" called for update", " at bedside, updated on POC", " visited this evening")))
    else:
        psych.t("pt requests ")
        c.contact(psych, ctx, rng.choice(p.contacts))
        psych.t(" be called w/ any changes")
    psych.t(".\n")
    sections.append(psych)
    if rng.random() < 0.3:
        page = Section(required=False)
        page.t("Paged covering MD ")
        c.clinician(page, ctx, ctx.other_person())
        page.t(" at ").phi(pf.pager_number(rng), P.PHONE).t(" re: ")
        page.t(rng.choice(("SBP 90s", "HR 120s", "new confusion", "pain uncontrolled", "low UO")))
        page.t(", orders rec'd.\n")
        sections.append(page)

    plan = Section()
    plan.t("plan: " if lower else "Plan: ")
    plan.t(rng.choice(("continue to monitor, maintain safety", "cont POC, reassess pain q4h", "monitor I/O, fall precautions",
                       "cont abx as ordered, encourage IS", "awaiting dispo, case mgmt aware")))
    plan.t(".\n")
    sections.append(plan)
    sections.append(c.admin_block(ctx, rng.randint(1, 2), title=False))
    sig = Section()
    c.signature(sig, ctx, time=rng.random() < 0.5)
    sections.append(sig)
    return sections
