"""Radiology report: exam, indication, comparison, technique, findings, impression (short)."""

from __future__ import annotations

from clinitune.phi.types import PhiType as P
from clinitune.synth import phi_formats as pf
from clinitune.synth import vocab
from clinitune.synth.builder import Section
from clinitune.terminology.icd10 import Icd10Entry
from clinitune.synth.patient import pool_for
from clinitune.synth.templates import common as c


def study_for(ctx: c.NoteContext) -> tuple[dict, list[Icd10Entry]]:
    """A study and the imaging diagnoses it can conclude (from the 'imaging' ICD-10 subset).

    With a code pool, only studies that can show one of the pooled imaging codes are drawn.
    """
    imaging = pool_for("imaging", ctx.patient.sex, ctx.code_pool)
    studies = [s for s in vocab.STUDIES if any(e.code.startswith(s["codes"]) for e in imaging)]
    study = ctx.rng.choice(studies)
    pool = [e for e in imaging if e.code.startswith(study["codes"])]
    k = 1 if ctx.rng.random() < 0.7 else 2
    return study, ctx.rng.sample(pool, min(k, len(pool)))


def build(ctx: c.NoteContext) -> list[Section]:
    rng, p = ctx.rng, ctx.patient
    study, findings = study_for(ctx)
    head = Section()
    if rng.random() < 0.5:
        head.phi(p.hospital.upper(), P.LOCATION).t(" - DEPARTMENT OF RADIOLOGY\n")
    head.t("EXAM: " if rng.random() < 0.6 else "Procedure: ").t(f"{rng.choice(study['exam'])}\n")
    head.t(rng.choice(("DATE OF EXAM: ", "Exam date: ", "DATE: ")))
    c.a_date(head, ctx, ctx.note_date, full=True)
    head.t(f" {rng.randint(0, 23):02d}:{rng.randint(0, 59):02d}\n")
    head.t(rng.choice(("ACCESSION #: ", "Accession: ", "Acc# "))).phi(pf.accession(rng), P.ID)
    head.t("   MRN: ").phi(pf.fmt_mrn(rng, p.mrn), P.MRN).t("\nPATIENT: ")
    c.patient_name(head, ctx)
    head.t("   DOB: ")
    c.a_date(head, ctx, p.dob, full=True)
    head.t("\nORDERING: ")
    c.clinician(head, ctx, ctx.other_person())
    head.t("\n")
    sections = [head]

    ind = Section()
    ind.t(rng.choice(("\nINDICATION: ", "\nCLINICAL HISTORY: ", "\nHistory: ")))
    c.age_phrase(ind, ctx)
    ind.t(" with ")
    fitting = [e for e in ctx.acute if e.code.startswith(study["codes"])]
    if fitting and rng.random() < 0.8:  # the reason for the visit, when this study can show it
        c.dx(ind, ctx, fitting[0], narrative=True)
    else:
        ind.t(rng.choice(study["why"]))
    ind.t(rng.choice((". Eval for acute process.\n", ", r/o acute pathology.\n", ".\n")))
    sections.append(ind)

    comp = Section()
    comp.t("COMPARISON: ")
    if rng.random() < 0.6:
        comp.t(rng.choice(("Prior study dated ", "CT ", "Radiograph from ", "")))
        c.a_date(comp, ctx, ctx.days_before(30, 2000), full=rng.random() < 0.6)
        comp.t(".\n")
    else:
        comp.t("None.\n")
    comp.t(f"TECHNIQUE: {study['technique']}\n")
    sections.append(comp)

    body = Section()
    body.t("\nFINDINGS:\n")
    normals = rng.sample(study["normal"], rng.randint(1, len(study["normal"])))
    for e in findings:
        pre, post = rng.choice((("There is ", ", see impression."), ("Findings consistent with ", "."),
                                 ("Redemonstrated ", "."), ("New ", " is noted."), ("Imaging suggests ", ".")))
        body.t(pre)
        c.dx(body, ctx, e, narrative=True)
        body.t(post + " ")
    body.t(" ".join(normals) + "\n")
    sections.append(body)

    imp = Section()
    imp.t(rng.choice(("\nIMPRESSION:\n", "\nImpression:\n", "\nIMPRESSION: ")))
    for i, e in enumerate(findings, 1):
        imp.t(f"{i}. ")
        c.dx(imp, ctx, e)
        imp.t(".\n")
    if rng.random() < 0.35:
        imp.t(f"{len(findings) + 1}. Results called to ")
        c.clinician(imp, ctx, ctx.other_person())
        imp.t(" at ").phi(pf.phone_number(rng), P.PHONE).t(" ")
        c.on_date(imp, ctx, ctx.note_date)
        imp.t(".\n")
    sections.append(imp)
    if rng.random() < 0.3:
        sections.append(c.admin_block(ctx, 1, title=False))
    sig = Section()
    sig.t("\n")
    c.signature(sig, ctx)
    sections.append(sig)
    return sections
