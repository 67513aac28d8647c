"""Held-out boilerplate families D and E, for scoring the detector once, after it was changed.

Written (and committed) before the detector was touched again and before family C's misses were
looked at; not run until the detector changes were done, and not to be changed to suit the
detector. The seed is fixed (``HELDOUT_SEED``). Everything here differs from families A-C
(``boilerplate_inject``): other sites, other clinicians (with credentials), other wording and
layouts, and two harder placements real exports have:

* optional lines inside a block (a cosigner, a second interpreter line) present in some notes of a
  site and not others, so a block is not always the same run of lines;
* ``E``'s page-break block (a footer, a rule and a header of the next page) lands *inside* the
  note, between two of its lines, as printed multi-page documents put it.

Family ``D``: EHR portal banner (21st Century Cures Act wording), an e-mail style legal
disclaimer, a multi-line signature block with credentials, NPI and contact lines, and an
interpreter attestation. Family ``E``: a telehealth attestation, a scanned-document stamp and OCR
footer, a page break inside the note, a records-release disclaimer and a billing/time attestation
written as template text.

Output type and scoring are those of ``boilerplate_inject`` (``InjectedNote``; injected lines are
the non-blank lines added).
"""

from __future__ import annotations

import random

from boilerplate_inject import InjectedNote

HELDOUT_SEED = 160_316

SITES = ["Bayview", "Granite Peaks", "Willow Creek", "Summit Ridge", "Prairie Lane", "Elmhurst", "Silver Lake", "Fairhaven",
         "Juniper Bluff", "Copper Canyon"]
SUFFIXES = ["Regional Health", "Medical Associates", "Children's Hospital", "Health Partners"]
CLINICIANS = ["Rebecca Lindqvist, MD", "Daniel Osei, DO", "Maria Esposito, NP-C", "Thomas Nguyen, PA-C",
              "Grace Adeyemi, MD, FACP", "Yusuf Karim, MD, PhD", "Ingrid Solberg, MD", "Carlos Mendoza, DNP, APRN"]
SPECIALTIES = ["Internal Medicine", "Family Medicine", "Pediatrics", "Cardiology", "Hospital Medicine", "Urgent Care"]
LANGUAGES = ["Spanish", "Vietnamese", "Mandarin", "Arabic", "Somali", "Portuguese", "Russian", "Haitian Creole"]
PLATFORMS = ["a HIPAA-compliant video platform", "the health system's secure video application", "audio-video telehealth"]

# Blocks: (name, where, lines). where: "top", "bottom" or "inside" (between two lines of the note).
# A line starting with "?" is optional: present in a note with probability 1/2.
FAMILIES: dict[str, list[tuple[str, str, list[str]]]] = {
    "D": [
        ("portal", "top", [
            "{site} MyHealth | Visit Notes",
            "This note has been shared with you as required by the 21st Century Cures Act.",
            "Clinical notes are written for your care team and may use medical terms; send us a message with any questions.",
        ]),
        ("disclaimer", "bottom", [
            "DISCLAIMER: The information contained in this transmission is privileged and confidential.",
            "It is intended for the addressee only. If you have received it in error, notify the sender by reply and delete it.",
            "Any unauthorised use, copying or dissemination of this communication is strictly prohibited.",
        ]),
        ("signature", "bottom", [
            "{clinician}",
            "{specialty} | {site} {suffix}",
            "NPI {npi}",
            "Office: ({area}) {phone} | Secure fax: ({area}) {fax}",
            "?Cosigned: {clinician2} {date}",
            "Signed electronically {date} {time}",
        ]),
        ("interpreter", "bottom", [
            "Interpreter attestation: a qualified medical interpreter was used for this encounter.",
            "Language: {language}. Interpreter ID {interp_id}, via {modality}.",
            "?Interpreter present for the entire visit.",
        ]),
    ],
    "E": [
        ("telehealth", "top", [
            "[Telehealth Visit]",
            "This encounter was conducted using {platform}. Verbal consent for a virtual visit was obtained.",
            "Participants joined from separate locations; identity was verified with two identifiers.",
        ]),
        ("scan", "top", [
            "SCANNED DOCUMENT | Batch {batch} | Image {page} of {pages}",
            "Indexed by {site} Health Information Services on {date}",
        ]),
        ("page_break", "inside", [
            "{site} {suffix} - Continued on next page",
            "______________________________",
            "{site} {suffix} | Page {page2} | Printed {date} {time}",
        ]),
        ("release", "bottom", [
            "|| Release of information: copies of this record are released only with a signed authorization",
            "|| or as permitted by law. Requests go to the Release of Information office, ({area}) {phone}.",
        ]),
        ("ocr", "bottom", [
            "OCR text generated automatically from the scanned image; the image on file is the legal record.",
            "Doc ID {doc_id} | Retention class {retention}",
        ]),
        ("time", "bottom", [
            "?Time statement: {minutes} minutes were spent on the date of service, including record review and documentation.",
            "Template version {version} - {site} {suffix}",
        ]),
    ],
}


def _fill(line: str, rng: random.Random, site: str, suffix: str) -> str:
    return line.format(
        site=site, suffix=suffix,
        date=f"{rng.randint(2016, 2025)}-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}",
        time=f"{rng.randint(1, 12)}:{rng.randint(0, 59):02d} {rng.choice(['AM', 'PM'])}",
        clinician=rng.choice(CLINICIANS), clinician2=rng.choice(CLINICIANS), specialty=rng.choice(SPECIALTIES),
        npi=f"{rng.randint(1_000_000_000, 1_999_999_999)}", area=rng.randint(200, 989), phone=f"{rng.randint(200, 999)}-{rng.randint(1000, 9999)}",
        fax=f"{rng.randint(200, 999)}-{rng.randint(1000, 9999)}", language=rng.choice(LANGUAGES),
        interp_id=rng.randint(10_000, 99_999), modality=rng.choice(["video", "telephone", "in person"]),
        platform=rng.choice(PLATFORMS), batch=rng.randint(1000, 99999), page=rng.randint(1, 4), pages=rng.randint(4, 12),
        page2=rng.randint(2, 5), doc_id=f"{rng.randint(10**7, 10**8 - 1)}", retention=rng.choice(["A", "B", "C7"]),
        minutes=rng.randint(15, 75), version=f"{rng.randint(2, 14)}.{rng.randint(0, 9)}",
    )


def inject_heldout(notes: list[tuple[str, str, str]], family: str, seed: int = HELDOUT_SEED, notes_per_site: int = 40,
                   p_block: float = 0.85) -> list[InjectedNote]:
    """``notes`` as (note_id, patient_id, text) -> the same notes with family ``D`` or ``E``'s site blocks.

    Each site uses one clinician set and one fixed choice per slot that a site keeps (its name and
    suffix); per-note slots (dates, ids, pages, the signer) vary. ``clinician`` is fixed per site
    for the signature block's first line half the time (a clinic with one doctor), else per note.
    """
    rng = random.Random(seed * 31 + ord(family))
    blocks = FAMILIES[family]
    n_sites = max(2, round(len(notes) / notes_per_site))
    site_doctor = {k: rng.choice(CLINICIANS) if rng.random() < 0.5 else None for k in range(n_sites)}
    out = []
    for i, (note_id, patient_id, text) in enumerate(notes):
        k = i % n_sites
        site, suffix = SITES[k % len(SITES)], SUFFIXES[k // len(SITES) % len(SUFFIXES)]
        original = text.split("\n")
        top, bottom, inside, injected = [], [], [], []
        for _name, where, lines in blocks:
            if rng.random() >= p_block:
                continue
            filled = []
            for line in lines:
                if line.startswith("?"):
                    if rng.random() < 0.5:
                        continue
                    line = line[1:]
                if line == "{clinician}" and site_doctor[k]:
                    filled.append(site_doctor[k])
                else:
                    filled.append(_fill(line, rng, site, suffix))
            injected.extend(filled)
            {"top": top, "bottom": bottom, "inside": inside}[where].extend(filled + [""])
        body = list(original)
        if inside:
            cut = rng.randint(1, max(1, len(body) - 1)) if len(body) > 1 else len(body)
            body = body[:cut] + [""] + inside + body[cut:]
        full = top + body + ([""] if bottom else []) + bottom
        out.append(InjectedNote(note_id, patient_id, original, "\n".join(full).strip("\n"), injected))
    return out
