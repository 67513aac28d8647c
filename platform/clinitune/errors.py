"""User-facing errors.

A :class:`UserError` is a mistake the user can fix (bad path, bad config key, bad value). The CLI
prints its one-line message and exits with code 2, never a traceback. Messages must name the
field or path, say what is wrong with the value, and say how to fix it. They must never contain
note text: refer to records by note id, file and line.
"""

from __future__ import annotations


class UserError(Exception):
    """A mistake in the user's input or configuration; shown as one line, exit code 2."""

    exit_code = 2

    def __init__(self, message: str, *, fix: str | None = None):
        message = " ".join(str(message).split())  # one line, always
        if fix:
            message = f"{message} Fix: {' '.join(fix.split())}"
        super().__init__(message)


class ConfigError(UserError):
    """A configuration file or value is invalid."""


class InputPathError(UserError):
    """An input or output path is missing, unreadable or of an unsupported kind."""


class OutputPathError(UserError):
    """An output location cannot be written: full disk, read-only file system, no permission."""


class RecordError(Exception):
    """A single record cannot be processed; carries a reason code and never the record's text."""

    def __init__(self, reason: str, detail: str = ""):
        self.reason = reason
        self.detail = detail
        super().__init__(f"{reason}: {detail}" if detail else reason)
