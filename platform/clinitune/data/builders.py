"""Task builders: source rows -> supervised chat examples, registered by name.

A builder is a small picklable callable over pandas batches. It returns one row per input row
with ``example_id`` (a note id or a content hash, never text), ``messages`` (a JSON list of
``{"role", "content"}``) and ``status`` (``ok`` or a reason code such as ``no_label``), so every
input row is accounted for in the dataset manifest. Register more tasks (summaries, ...) with
``@register_builder("name")``.

``icd10_coding`` is the demo task: the user turn asks for the ICD-10-CM codes of a de-identified
note, the assistant turn is the canonical code list (``format_codes``); ``parse_codes`` reads a
model's answer back, for evaluation.
"""

from __future__ import annotations

import hashlib
import json
import re
from typing import Any, ClassVar

import pandas as pd

from clinitune.errors import ConfigError
from clinitune.named import registrar
from clinitune.terminology.icd10 import format_codes

STATUS_OK = "ok"
ROLES = ("system", "user", "assistant")

_REGISTRY: dict[str, type["TaskBuilder"]] = {}


class TaskBuilder:
    """Base class: ``__call__(batch) -> DataFrame[example_id, messages, status]``."""

    name: ClassVar[str] = ""
    description: ClassVar[str] = ""
    #: the builder needs at least one of these column sets in its source
    column_sets: ClassVar[tuple[tuple[str, ...], ...]] = ()

    def __init__(self, system_prompt: str | None = None):
        self.system_prompt = system_prompt

    def __call__(self, batch: pd.DataFrame) -> pd.DataFrame:  # pragma: no cover - abstract
        raise NotImplementedError

    def check_columns(self, columns: list[str], source: str) -> None:
        if not any(set(cs) <= set(columns) for cs in self.column_sets):
            want = " or ".join("(" + ", ".join(cs) + ")" for cs in self.column_sets)
            raise ConfigError(
                f"task '{self.name}': source '{source}' lacks the columns it needs: {want}; it has {', '.join(sorted(columns))}.",
                fix="point data.source at a dataset with those columns or pick another task.name.",
            )

    def _with_system(self, messages: list[dict]) -> list[dict]:
        if self.system_prompt and (not messages or messages[0]["role"] != "system"):
            return [{"role": "system", "content": self.system_prompt}, *messages]
        return messages


register_builder = registrar(_REGISTRY, "task builder")


def registered_builders() -> dict[str, type[TaskBuilder]]:
    return dict(_REGISTRY)


def build_builder(name: str, options: dict[str, Any] | None = None, system_prompt: str | None = None) -> TaskBuilder:
    """Instantiate a registered builder; unknown names or options are one-line ConfigErrors."""
    if name not in _REGISTRY:
        raise ConfigError(f"data.task.name: unknown task '{name}'.", fix=f"use one of: {', '.join(sorted(_REGISTRY))}.")
    try:
        return _REGISTRY[name](system_prompt=system_prompt, **(options or {}))
    except TypeError as err:
        raise ConfigError(f"data.task.options: bad option for task '{name}' ({err}).",
                          fix="check the task's documented options (clinitune data tasks).") from None
    except ValueError as err:
        raise ConfigError(f"data.task.options: {err}") from None


# --- ICD-10-CM coding --------------------------------------------------------------------------

# How codes are written in text (format_codes, parse_codes) is the terminology floor's.


def _attributes(value: Any) -> dict:
    if isinstance(value, dict):
        return value
    if not value:
        return {}
    try:
        out = json.loads(value)
    except (TypeError, json.JSONDecodeError):
        return {}
    return out if isinstance(out, dict) else {}


@register_builder("icd10_coding")
class Icd10Coding(TaskBuilder):
    """Note -> its ICD-10-CM codes (from attributes["icd10"])."""

    description = "note -> its ICD-10-CM codes (labels from the 'icd10' key of the attributes JSON)"
    column_sets = (("note_id", "text", "attributes"),)
    DEFAULT_INSTRUCTION = (
        "List the ICD-10-CM diagnosis codes for this clinical note. "
        "Answer with the codes only, separated by commas."
    )

    ANSWER_FORMATS = ("codes", "code_name", "name_code")
    NAME_CODE_INSTRUCTION = (
        "List the diagnoses in this clinical note with their ICD-10-CM codes, "
        "one per line as: diagnosis (code)."
    )

    def __init__(self, system_prompt: str | None = None, *, max_note_chars: int = 2000, include_names: bool = False,
                 answer_format: str | None = None, label_key: str = "icd10", instruction: str | None = None):
        super().__init__(system_prompt)
        if max_note_chars < 50:
            raise ValueError("max_note_chars must be at least 50")
        fmt = answer_format or ("code_name" if include_names else "codes")
        if fmt not in self.ANSWER_FORMATS:
            raise ValueError(f"answer_format must be one of {', '.join(self.ANSWER_FORMATS)}")
        self.max_note_chars = int(max_note_chars)
        self.answer_format = fmt
        self.include_names = fmt != "codes"
        self.label_key = label_key
        self.instruction = instruction or (self.NAME_CODE_INSTRUCTION if fmt == "name_code" else self.DEFAULT_INSTRUCTION)
        if self.include_names:
            from clinitune.terminology.icd10 import lookup  # noqa: F401 - fail early when the table is missing

    def answer(self, codes: list[str]) -> str:
        text = format_codes(codes)
        if not self.include_names:
            return text
        from clinitune.terminology.icd10 import lookup

        lines = []
        for code in text.split(", "):
            entry = lookup(code)
            if self.answer_format == "name_code":  # the name first: copied from the note, then its code
                lines.append(f"{entry.long_name} ({code})" if entry else code)
            else:
                lines.append(f"{code} {entry.long_name}" if entry else code)
        return "\n".join(lines)

    def note_excerpt(self, text: str) -> str:
        text = " ".join(str(text).split()) if len(text) > self.max_note_chars else str(text).strip()
        if len(text) <= self.max_note_chars:
            return text
        cut = text[: self.max_note_chars]
        space = cut.rfind(" ")
        return (cut[:space] if space > self.max_note_chars // 2 else cut) + " ..."

    def __call__(self, batch: pd.DataFrame) -> pd.DataFrame:
        ids, msgs, status = [], [], []
        for note_id, text, attrs in zip(batch["note_id"], batch["text"], batch["attributes"]):
            ids.append(str(note_id))
            codes = _attributes(attrs).get(self.label_key) or []
            if isinstance(codes, str):
                codes = [c for c in re.split(r"[,;\s]+", codes) if c]
            if not isinstance(text, str) or not text.strip():
                msgs.append("")
                status.append("empty_text")
                continue
            if not codes:
                msgs.append("")
                status.append("no_label")
                continue
            messages = self._with_system([
                {"role": "user", "content": f"{self.instruction}\n\nNote:\n{self.note_excerpt(text)}"},
                {"role": "assistant", "content": self.answer(list(codes))},
            ])
            msgs.append(json.dumps(messages, ensure_ascii=False))
            status.append(STATUS_OK)
        return pd.DataFrame({"example_id": ids, "messages": msgs, "status": status})


# --- bring-your-own instructions ----------------------------------------------------------------


@register_builder("instructions")
class Instructions(TaskBuilder):
    """Chat examples as a ``messages`` column (list or JSON string) or ``prompt``/``response`` columns."""

    description = "bring-your-own chat: a 'messages' column (JSONL chat format) or prompt/response columns"
    column_sets = (("messages",), ("prompt", "response"))

    def __init__(self, system_prompt: str | None = None, *, messages_column: str = "messages",
                 prompt_column: str = "prompt", response_column: str = "response", id_column: str = "id"):
        super().__init__(system_prompt)
        self.messages_column, self.prompt_column = messages_column, prompt_column
        self.response_column, self.id_column = response_column, id_column
        self.column_sets = ((messages_column,), (prompt_column, response_column))

    @staticmethod
    def _valid(messages: Any) -> list[dict] | None:
        if isinstance(messages, str):
            try:
                messages = json.loads(messages)
            except json.JSONDecodeError:
                return None
        if hasattr(messages, "tolist"):  # numpy array of dicts from Arrow
            messages = messages.tolist()
        if not isinstance(messages, list) or not messages:
            return None
        out = []
        for m in messages:
            if not isinstance(m, dict) or m.get("role") not in ROLES or not isinstance(m.get("content"), str):
                return None
            out.append({"role": m["role"], "content": m["content"]})
        if out[-1]["role"] != "assistant" or not out[-1]["content"].strip():
            return None
        return out

    def __call__(self, batch: pd.DataFrame) -> pd.DataFrame:
        ids, msgs, status = [], [], []
        use_messages = self.messages_column in batch.columns
        n = len(batch)
        rows_ids = batch[self.id_column].astype(str).tolist() if self.id_column in batch.columns else [None] * n
        for i in range(n):
            if use_messages:
                messages = self._valid(batch[self.messages_column].iloc[i])
            else:
                p, r = batch[self.prompt_column].iloc[i], batch[self.response_column].iloc[i]
                ok = isinstance(p, str) and isinstance(r, str) and p.strip() and r.strip()
                messages = [{"role": "user", "content": p}, {"role": "assistant", "content": r}] if ok else None
            if messages is None:
                ids.append(rows_ids[i] or f"row-{hashlib.sha1(repr(batch.iloc[i].tolist()).encode()).hexdigest()[:16]}")
                msgs.append("")
                status.append("bad_messages")
                continue
            payload = json.dumps(self._with_system(messages), ensure_ascii=False)
            ids.append(rows_ids[i] or f"ex-{hashlib.sha1(payload.encode()).hexdigest()[:16]}")
            msgs.append(payload)
            status.append(STATUS_OK)
        return pd.DataFrame({"example_id": ids, "messages": msgs, "status": status})


# --- documentation tasks (dialogue -> note section / full note) register themselves on import ------
from clinitune.data import documentation as _documentation  # noqa: E402,F401
