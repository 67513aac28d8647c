"""FHIR attachments -> note text: the content types EHRs export notes in, and their charsets.

* ``text/plain`` (and ``text/markdown``) as is; ``text/html`` and ``application/xhtml+xml``
  through ``inscriptis`` (block elements, paragraphs, line breaks and list items become lines, so
  a note keeps its paragraph and list structure); ``text/rtf`` and ``application/rtf`` through
  ``striprtf`` (``\\par`` becomes a new line). Markup that the libraries cannot make sense of gives
  the text they can recover; a document that yields no text is ``empty_text``.
* Bytes are decoded with the ``charset`` parameter of ``contentType`` (else the reader's
  encoding; RTF declares its own code page). A charset that lies - bytes invalid in it - is read
  leniently only where that is safe: bytes that are valid UTF-8 are read as UTF-8; otherwise the
  record is ``invalid_encoding``. An unknown charset name is ``invalid_encoding`` too.
* Of several attachments the best text one wins: plain text, then markdown, HTML, XHTML, RTF; an
  attachment that fails is passed over for the next; when all fail, the best one's reason stands.
  Other content types (PDF, images) are ``unsupported_content``.
* ``attachment.url`` is resolved by the caller's ``resolve`` (a Binary of the same export);
  ``attachment.data`` is inline base64.
"""

from __future__ import annotations

import base64
import binascii
import codecs
from typing import Any, Callable

from clinitune.errors import RecordError
from clinitune.schema import Q_BAD_BASE64, Q_EMPTY_TEXT, Q_INVALID_ENCODING, Q_UNSUPPORTED_CONTENT, Q_WRONG_TYPE

# Lower rank is better text.
TEXT_TYPES = {
    "text/plain": 0, "text/markdown": 1, "text/html": 2, "application/xhtml+xml": 3, "text/rtf": 4, "application/rtf": 4,
}
# resolve(url) -> (raw bytes, content type of the Binary); raises RecordError.
Resolver = Callable[[str], tuple[bytes, str]]


def mime_of(content_type: str) -> str:
    return content_type.split(";")[0].strip().lower()


def charset_of(content_type: str) -> str | None:
    for param in content_type.split(";")[1:]:
        key, _, value = param.partition("=")
        if key.strip().lower() == "charset" and value.strip():
            return value.strip().strip("\"'")
    return None


def b64(data: Any, field: str) -> bytes:
    if not isinstance(data, str):
        raise RecordError(Q_WRONG_TYPE, f"field '{field}' is not a string")
    try:
        return base64.b64decode("".join(data.split()), validate=True)
    except (binascii.Error, ValueError):
        raise RecordError(Q_BAD_BASE64, f"field '{field}' is not valid base64") from None


def decode(raw: bytes, content_type: str, default: str) -> str:
    """Bytes -> str in the declared charset (see the module docstring for a charset that lies)."""
    charset = charset_of(content_type) or default
    try:
        codec = codecs.lookup(charset).name
    except LookupError:
        raise RecordError(Q_INVALID_ENCODING, "attachment declares an unknown charset") from None
    try:
        return raw.decode("utf-8-sig" if codec == "utf-8" else codec)
    except UnicodeDecodeError:
        pass
    try:
        return raw.decode("utf-8-sig")  # a lying charset over valid UTF-8: safe to read
    except UnicodeDecodeError:
        raise RecordError(Q_INVALID_ENCODING, "attachment data is not valid in its declared charset") from None


def html_to_text(markup: str) -> str:
    from inscriptis import get_text
    from inscriptis.model.config import ParserConfig

    return get_text(markup, ParserConfig(display_links=False, display_images=False))


def rtf_to_text(markup: str) -> str:
    from striprtf.striprtf import rtf_to_text as convert

    return convert(markup, errors="ignore")


def to_text(raw: bytes, content_type: str, default_charset: str) -> str:
    mime = mime_of(content_type)
    if mime in ("text/rtf", "application/rtf"):
        # RTF is 7-bit: its own \ansicpg / \'xx escapes carry the code page.
        text = rtf_to_text(decode(raw, content_type, "latin-1"))
    elif mime in ("text/html", "application/xhtml+xml"):
        text = html_to_text(decode(raw, content_type, default_charset))
    else:
        text = decode(raw, content_type, default_charset)
    if not text.strip():
        raise RecordError(Q_EMPTY_TEXT, f"attachment of type {mime} holds no text")
    return text


def best_text(attachments: list[tuple[str, dict]], resolve: Resolver | None, default_charset: str) -> str:
    """Text of the best attachment among ``(field path, attachment)``; RecordError when none gives text."""
    ranked = []
    others = 0
    for field, att in attachments:
        ctype = att.get("contentType")
        if ctype is not None and not isinstance(ctype, str):
            raise RecordError(Q_WRONG_TYPE, f"field '{field}.contentType' is not a string")
        mime = mime_of(ctype or "")
        if ctype and mime not in TEXT_TYPES:
            others += 1
            continue
        ranked.append((TEXT_TYPES.get(mime, 0), field, att, ctype or ""))
    if not ranked:
        raise RecordError(Q_UNSUPPORTED_CONTENT, f"no text attachment ({others} attachment(s) of other types)")
    ranked.sort(key=lambda r: r[0])
    first_error: RecordError | None = None
    for _, field, att, ctype in ranked:
        try:
            if att.get("data") is not None:
                raw = b64(att["data"], f"{field}.data")
            elif att.get("url") is not None:
                if not isinstance(att["url"], str):
                    raise RecordError(Q_WRONG_TYPE, f"field '{field}.url' is not a string")
                if resolve is None:
                    raise RecordError(Q_UNSUPPORTED_CONTENT, f"field '{field}.url' cannot be resolved here")
                raw, binary_type = resolve(att["url"])
                # The Binary knows its own bytes: its charset (and type, where the attachment has none) count.
                if not ctype:
                    ctype = binary_type
                elif charset_of(binary_type) and not charset_of(ctype):
                    ctype = f"{ctype}; charset={charset_of(binary_type)}"
            else:
                raise RecordError(Q_EMPTY_TEXT, f"field '{field}' has neither data nor url")
            return to_text(raw, ctype, default_charset)
        except RecordError as err:
            first_error = first_error or err
    assert first_error is not None
    raise first_error
