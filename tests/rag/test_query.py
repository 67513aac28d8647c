"""Retrieval queries from a note's clinical content: one per problem, the same in eval and serving."""

from __future__ import annotations

from clinitune.rag.prompt import queries_of
from clinitune.rag.query import clinical_queries

DISCHARGE = """Discharge Summary -- Powers 8
Pt: [NAME] | MRN [ID] | DOB [DATE]

Principal/Secondary Dx:
1. Acute on chronic diastolic (congestive) heart failure
2. Asthma with exacerbation
3. Pure hypercholesterolemia

Brief HPI: 42F with h/o pure hypercholesterolemia and unspecified asthma, uncomplicated who presented with PND.
In the ED T 100.5F HR 96 BP 126/91 RR 25 SpO2 88% room air.

Brief Hospital Course:
# acute on chronic diastolic heart failure: euvolemic today, transition to PO diuretic.
# ESRD: Cr at baseline.
Case discussed with Dr [NAME] (renal) on [DATE].

DISPOSITION: Home with VNA services. Condition: fair.
"""

NURSING = """Nursing Assessment 7a-7p
43 yo female admitted on [DATE] w/ acute on chronic diastolic heart failure. PMH: major depressive disorder, single episode, unspecified and pure hypercholesterolemia.
Neuro: alert, oriented
VS: T 99.3F, P 105, BP 121/53
Plan: cont POC, reassess pain q4h.
"""

RADIOLOGY = """EXAM: XR CHEST PA AND LATERAL
History: 54 y/o male with cough.
FINDINGS:
There is lobar pneumonia, see impression. No pleural effusion or pneumothorax.

IMPRESSION: 1. Lobar pneumonia, unspecified organism.
Electronically signed by [NAME], MD on [DATE]
"""

REAL_STYLE = """ASSESSMENT AND PLAN

Depression.
• Medical Reasoning: He is doing well with his current regimen.
• Medical Treatment: He can continue Prozac 20 mg a day.

Hypertension.
• Medical Reasoning: His blood pressure was normal today.
"""


def test_one_query_per_problem_from_the_lists_and_the_narrative():
    q = clinical_queries(DISCHARGE)
    assert q[:3] == ["Acute on chronic diastolic (congestive) heart failure", "Asthma with exacerbation", "Pure hypercholesterolemia"]
    assert "ESRD" in q and "unspecified asthma, uncomplicated" in q
    assert not any(x in " ".join(q) for x in ("BP", "VNA", "discussed", "MRN"))  # vitals, disposition, people: not problems


def test_inline_history_keeps_qualifiers_on_their_item():
    q = clinical_queries(NURSING)
    assert q == ["acute on chronic diastolic heart failure", "major depressive disorder, single episode, unspecified",
                 "pure hypercholesterolemia"]


def test_findings_and_impressions_without_negated_findings():
    q = clinical_queries(RADIOLOGY)
    assert "lobar pneumonia" in q and "Lobar pneumonia, unspecified organism" in q
    assert not any("pleural effusion" in x or "signed" in x for x in q)


def test_assessment_headings_of_a_physician_note():
    assert clinical_queries(REAL_STYLE) == ["Depression", "Hypertension"]


def test_a_question_is_its_own_query_and_prompts_give_the_notes_queries():
    assert clinical_queries("What is the usual adult dose of metformin?") == ["What is the usual adult dose of metformin?"]
    prompt = [{"role": "system", "content": "You are a clinical coding assistant."},
              {"role": "user", "content": "List the ICD-10-CM diagnosis codes for this clinical note.\n\nNote:\n" + NURSING}]
    assert queries_of(prompt) == clinical_queries(NURSING)
