"""Documentation tasks: a doctor-patient dialogue -> the note a clinician wrote from it.

* ``note_section`` (MTS-Dialog: ``ID, section_header, section_text, dialogue``): one section of the
  note; the section header, spelled out ("Past medical history"), is the instruction, so one model
  learns every section and the house style of each.
* ``full_note`` (ACI-bench: ``encounter_id, dialogue, note``): the whole sectioned visit note
  (long: several thousand tokens per example, for GPU-sized models and context windows).

Rows whose dialogue is longer than ``max_dialogue_chars`` are dropped with status ``too_long``
(counted in the manifest), never cut: a truncated conversation would teach the model to invent
what was cut off.
"""

from __future__ import annotations

import hashlib
import json

import pandas as pd

from clinitune.data.builders import STATUS_OK, TaskBuilder, register_builder

# MTS-Dialog's 20 normalised headers, as a clinician names the section.
SECTION_NAMES = {
    "GENHX": "History of present illness",
    "CC": "Chief complaint",
    "PASTMEDICALHX": "Past medical history",
    "PASTSURGICAL": "Past surgical history",
    "FAM/SOCHX": "Family and social history",
    "MEDICATIONS": "Medications",
    "ALLERGY": "Allergies",
    "ROS": "Review of systems",
    "EXAM": "Physical examination",
    "ASSESSMENT": "Assessment",
    "PLAN": "Plan",
    "DIAGNOSIS": "Diagnosis",
    "DISPOSITION": "Disposition",
    "EDCOURSE": "Emergency department course",
    "IMMUNIZATIONS": "Immunizations",
    "IMAGING": "Imaging",
    "LABS": "Laboratory results",
    "PROCEDURES": "Procedures",
    "GYNHX": "Gynecologic history",
    "OTHER_HISTORY": "Other history",
}


def section_name(header: str) -> str:
    """A header code spelled out ('FAM/SOCHX' -> 'Family and social history'); unknown codes as written."""
    h = str(header).strip()
    return SECTION_NAMES.get(h.upper(), h.replace("_", " ").capitalize())


def _row_id(value, payload: str) -> str:
    if value is not None and str(value).strip() and str(value) != "nan":
        return str(value)
    return f"ex-{hashlib.sha1(payload.encode()).hexdigest()[:16]}"


class _DialogueBuilder(TaskBuilder):
    answer_column = ""
    id_column = ""
    max_default = 4000

    def __init__(self, system_prompt: str | None = None, *, max_dialogue_chars: int | None = None,
                 instruction: str | None = None):
        super().__init__(system_prompt)
        limit = self.max_default if max_dialogue_chars is None else int(max_dialogue_chars)
        if limit < 50:
            raise ValueError("max_dialogue_chars must be at least 50")
        self.max_dialogue_chars = limit
        self.instruction = instruction

    def prompt(self, row: dict) -> str:  # pragma: no cover - abstract
        raise NotImplementedError

    def __call__(self, batch: pd.DataFrame) -> pd.DataFrame:
        ids, msgs, status = [], [], []
        for row in batch.to_dict("records"):
            dialogue, answer = row.get("dialogue"), row.get(self.answer_column)
            ids.append(_row_id(row.get(self.id_column), f"{dialogue}\0{answer}"))
            if not isinstance(dialogue, str) or not dialogue.strip():
                msgs.append("")
                status.append("empty_text")
            elif not isinstance(answer, str) or not answer.strip():
                msgs.append("")
                status.append("no_label")
            elif len(dialogue) > self.max_dialogue_chars:
                msgs.append("")
                status.append("too_long")
            else:
                messages = self._with_system([{"role": "user", "content": self.prompt(row)},
                                              {"role": "assistant", "content": answer.strip()}])
                msgs.append(json.dumps(messages, ensure_ascii=False))
                status.append(STATUS_OK)
        return pd.DataFrame({"example_id": ids, "messages": msgs, "status": status})


@register_builder("note_section")
class NoteSection(_DialogueBuilder):
    """Dialogue -> one note section (MTS-Dialog); the section header is the instruction."""

    description = "doctor-patient dialogue -> the note section named by section_header (MTS-Dialog columns)"
    column_sets = (("section_header", "section_text", "dialogue"),)
    answer_column, id_column, max_default = "section_text", "ID", 2000
    DEFAULT_INSTRUCTION = "Write the {section} section of the clinical note for this doctor-patient conversation."

    def prompt(self, row: dict) -> str:
        template = self.instruction or self.DEFAULT_INSTRUCTION
        text = template.format(section=section_name(row["section_header"]).upper()) if "{section}" in template else template
        return f"{text}\n\nConversation:\n{row['dialogue'].strip()}"


@register_builder("full_note")
class FullNote(_DialogueBuilder):
    """Dialogue -> the whole visit note (ACI-bench)."""

    description = "doctor-patient dialogue -> the full clinical note of the visit (ACI-bench columns: encounter_id, dialogue, note)"
    column_sets = (("dialogue", "note"),)
    answer_column, id_column, max_default = "note", "encounter_id", 40000
    DEFAULT_INSTRUCTION = ("Write the clinical note for this doctor-patient encounter, with the usual sections "
                           "(chief complaint, history of present illness, review of systems, physical examination, "
                           "results, assessment and plan).")

    def prompt(self, row: dict) -> str:
        return f"{self.instruction or self.DEFAULT_INSTRUCTION}\n\nConversation:\n{row['dialogue'].strip()}"


__all__ = ["FullNote", "NoteSection", "SECTION_NAMES", "section_name"]
