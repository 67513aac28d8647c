"""Reviewer comments pass the serving PHI guard (``serve.guard.PhiGuard``, redact mode) before
they are stored: what the database keeps is the redacted text and counts per PHI kind. A comment
the guard cannot check is refused (nothing stored), as serving fails closed."""

from __future__ import annotations

import threading


class CommentGuard:
    def __init__(self):
        self._guard = None
        self._lock = threading.Lock()

    def _get(self):
        with self._lock:
            if self._guard is None:
                from clinitune.serve.config import PhiGuardSettings
                from clinitune.serve.guard import PhiGuard

                self._guard = PhiGuard(PhiGuardSettings(output="redact", prompt="off", citations=False))
            return self._guard

    def warm_up(self) -> None:
        self._get()

    def check(self, text: str) -> tuple[str | None, dict[str, int], bool]:
        """(stored comment or None when empty, PHI counts, ok); ok is False when it could not be checked."""
        text = (text or "").strip()
        if not text:
            return None, {}, True
        res = self._get().output(text)
        if res.blocked:
            return None, {}, False
        return res.text, dict(res.counts), True
