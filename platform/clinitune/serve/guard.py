"""The PHI guard: model output (and optionally prompts) pass the de-identification engine.

``redact`` replaces each PHI mention with its kind in brackets (``[NAME]``, the engine's tag mode);
``block`` withholds an answer that contains any (finish_reason ``content_filter``); for prompts,
``block`` refuses the request. Only counts per PHI kind leave the guard (for the audit log).

Streaming: text is checked before it is sent. The last ``holdback`` characters wait (up to a word
boundary) because the next tokens can complete a mention or give the context that makes it one,
and a mention that straddles the cut waits as a whole.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass, field

from clinitune.serve.config import PhiGuardSettings
from clinitune.serve.protocol import ApiError

_CONTEXT = 200  # characters of already-sent text given to the detector as context
# Control characters (but tab and line breaks), lone surrogates and replacement characters: never useful
# in an answer, and the de-id engine refuses text full of them as binary.
_JUNK = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f\ud800-\udfff\ufffd]")


def clean(text: str) -> str:
    return _JUNK.sub("", text)


@dataclass
class GuardResult:
    text: str
    counts: dict[str, int] = field(default_factory=dict)
    blocked: bool = False


def _apply(text: str, spans, start: int, end: int) -> tuple[str, Counter]:
    """``text[start:end]`` with every span inside it (clipped to the range) replaced by its tag."""
    out, pos, counts = [], start, Counter()
    for s in spans:
        s_start, s_end = max(s.start, start), min(s.end, end)
        if s_end <= s_start:
            continue
        out.append(text[pos:s_start])
        out.append(f"[{s.type}]")
        counts[s.type] += 1
        pos = s_end
    out.append(text[pos:end])
    return "".join(out), counts


class PhiGuard:
    def __init__(self, settings: PhiGuardSettings):
        from clinitune.phi import PhiConfig, PhiEngine

        self.settings = settings
        opts = {k: v for k, v in (("detector", settings.detector), ("model_dir", settings.model_dir)) if v is not None}
        self.engine = PhiEngine(PhiConfig(**opts))  # the same engine as curation and `clinitune deid`
        if settings.output != "off" or settings.prompt != "off" or settings.citations:
            self.engine.warm_up()

    def _redact(self, text: str) -> tuple[str, dict[str, int]]:
        r = self.engine.redact(clean(text), mode="tag")
        return r.text, dict(r.counts)

    def output(self, text: str) -> GuardResult:
        """The answer as it may leave. If the engine cannot check it, nothing leaves (fail closed)."""
        from clinitune.phi import PhiProcessingError

        mode = self.settings.output
        if mode == "off" or not text:
            return GuardResult(text)
        try:
            redacted, counts = self._redact(text)
        except PhiProcessingError:
            return GuardResult("", {}, blocked=True)
        if mode == "block" and counts:
            return GuardResult("", counts, blocked=True)
        return GuardResult(redacted, counts)

    def snippet(self, text: str) -> str:
        from clinitune.phi import PhiProcessingError

        if not self.settings.citations or not text:
            return text
        try:
            return self._redact(text)[0]
        except PhiProcessingError:
            return ""

    def prompt(self, messages: list[dict[str, str]]) -> tuple[list[dict[str, str]], dict[str, int]]:
        """Messages as the model should see them; a 400 :class:`ApiError` when blocking and PHI is present."""
        mode = self.settings.prompt
        if mode == "off":
            return messages, {}
        from clinitune.phi import PhiProcessingError

        out, total = [], Counter()
        for i, m in enumerate(messages):
            try:
                redacted, counts = self._redact(m["content"])
            except PhiProcessingError as err:
                raise ApiError(400, f"Message {i} cannot be checked for PHI: {err.reason}. Send plain text.",
                               param=f"messages.{i}.content", code="invalid_value") from None
            total.update(counts)
            out.append({**m, "content": redacted})
        if mode == "block" and total:
            kinds = ", ".join(f"{k} x{v}" for k, v in sorted(total.items()))
            raise ApiError(400, f"The prompt contains PHI ({kinds}) and this server refuses PHI in prompts. "
                                "De-identify the text before sending it.", param="messages", code="phi_in_prompt")
        return out, dict(total)

    def stream(self) -> "StreamGuard":
        return StreamGuard(self)


class StreamGuard:
    """Checks streamed text incrementally: feed deltas, send what :meth:`feed` returns, then :meth:`finish`."""

    def __init__(self, guard: PhiGuard):
        self.guard = guard
        self.mode = guard.settings.output
        self.holdback = guard.settings.stream_holdback_chars
        self.raw = ""
        self.sent = 0  # raw characters already released
        self.counts: Counter = Counter()
        self.blocked = False

    def _release(self, upto: int) -> str:
        from clinitune.phi import PhiProcessingError

        if upto <= self.sent or self.blocked:
            return ""
        base = max(0, self.sent - _CONTEXT)
        try:
            found = self.guard.engine.detect(self.raw[base:])
        except PhiProcessingError:  # cannot be checked: stop the stream (fail closed)
            self.blocked = True
            return ""
        spans = [s.__class__(s.start + base, s.end + base, s.type, s.score) for s in found]
        for s in spans:  # never cut through a mention: it waits and goes out whole
            if s.start < upto < s.end:
                upto = s.start if s.start > self.sent else self.sent
        if upto <= self.sent:
            return ""
        if self.mode == "block":
            if any(s.end > self.sent and s.start < upto for s in spans):
                self.blocked = True
                self.counts.update(s.type for s in spans if s.end > self.sent)
                return ""
            out = self.raw[self.sent:upto]
        else:
            out, counts = _apply(self.raw, spans, self.sent, upto)
            self.counts.update(counts)
        self.sent = upto
        return out

    def feed(self, delta: str) -> str:
        if self.mode == "off":
            return delta
        self.raw += clean(delta)
        cut = len(self.raw) - self.holdback
        if cut <= self.sent:
            return ""
        space = max(self.raw.rfind(" ", self.sent, cut), self.raw.rfind("\n", self.sent, cut))
        return self._release(space + 1 if space >= 0 else self.sent)

    def finish(self) -> str:
        if self.mode == "off":
            return ""
        return self._release(len(self.raw))
