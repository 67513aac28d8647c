"""Terminology-constrained decoding: generated codes must exist in a code system's table.

A **code system** is a table of valid codes (``clinitune.terminology.systems``: ``icd10cm`` built in,
``file:PATH`` for a table of your own).

**Code spans.** The constraint acts only inside code spans of the answer, and nowhere else: a
span is a word that starts (after a non-word character, or at the start) with a letter followed
by a digit, i.e. the shape ``parse_codes`` reads codes in (``clinitune.terminology.icd10``), and runs
over the word characters and dots that follow. Inside a span every character must extend a
prefix of a code in the table (a prefix trie over the codes, kept as a sorted array and searched
by bisection), and the span may end (at a non-word character or the end of the answer) only on a
complete code, optionally followed by a sentence's full stop. So ``Pure hypercholesterolemia
(E78.00)`` and ``E11.9, I10`` decode as the model likes, while ``E11`` (a category, not a billable
code), ``E11.99`` or ``T2DM`` (letter + digit: a code span) cannot be produced. Everything outside
spans is free text.

**Compiling for a tokenizer.** Each vocabulary token is decoded once; the automaton runs over the
upper-cased token text (the scorer upper-cases answers too). The allowed-token set of a state is
computed on first use and cached: the two free-text states cover almost the whole vocabulary
(only tokens that would open an invalid span are removed), and a span state needs only the tokens
whose first character continues a code. A token that decodes to a partial UTF-8 character
(``\\ufffd``) is treated as possibly a word character inside a span (it could glue a letter to a
code) and as a word boundary outside one, so the guarantee holds for the decoded text.

**A code after its diagnosis name.** Answers are often written ``diagnosis (code)``. When the text of
the current line up to an opening parenthesis is exactly a name the table gives to some codes
(ICD-10-CM's long or short name; a file table's ``name`` column; compared by
:func:`~clinitune.terminology.systems.name_key`, after a list marker such as ``1.`` or ``-``), the
code span that follows may only be one of *those* codes: ``Old myocardial infarction (`` can
continue with ``I25.2`` and no other code. A name the table does not know (a paraphrase, a
shorthand) leaves the span to the whole table, and so does a letter the named codes do not start
with once written. A small model names a diagnosis far more reliably than it recalls the code
string among tens of thousands; this keeps the code it writes the code of what it said.

**Length limits.** A sequence cut off by its token limit in the middle of a span would end in a
partial code; :meth:`CodeConstraint.complete` removes such a trailing partial span, and
``holdback`` lets a streaming decoder keep it back until it is settled.
"""

from __future__ import annotations

import re
import threading
from typing import Iterable

import torch

from clinitune.constrain.hook import Constraint, ConstraintState
from clinitune.terminology.systems import CodeSystem, load_code_system

SPAN_CHARS = frozenset("0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ.")
UNKNOWN_CHAR = "\ufffd"  # a partial UTF-8 sequence decoded alone

# automaton states: (kind, span text); kinds
BOUNDARY, WORD, SPAN, DOT_END = 0, 1, 2, 3
_START = (BOUNDARY, "")


def _is_word(c: str) -> bool:
    """A regular-expression word character (``\\w`` on str patterns)."""
    return c.isalnum() or c == "_"


# --- the automaton ------------------------------------------------------------------------------


def _step(system: CodeSystem, state: tuple[int, str], c: str) -> tuple[int, str] | None:
    """The state after one (upper-cased) character; None when it would break the constraint."""
    kind, span = state
    if kind == SPAN:
        if c in SPAN_CHARS:
            nxt = span + c
            if system.is_prefix(nxt):
                return (SPAN, nxt)
            if c == "." and span in system:
                return (DOT_END, span)
            return None
        if c == UNKNOWN_CHAR or _is_word(c):
            return None
        return (BOUNDARY, "") if span in system else None
    if kind == DOT_END:
        return None if (c == UNKNOWN_CHAR or _is_word(c)) else (BOUNDARY, "")
    if len(span) == 1:  # a letter at a word start: a code span when a digit follows
        if "0" <= c <= "9":
            nxt = span + c
            return (SPAN, nxt) if system.is_prefix(nxt) else None
        if c == UNKNOWN_CHAR:
            return (BOUNDARY, "")
        return (WORD, "") if _is_word(c) else (BOUNDARY, "")
    if kind == BOUNDARY:
        if "A" <= c <= "Z":
            return (BOUNDARY, c)
        return (WORD, "") if (_is_word(c) and c != UNKNOWN_CHAR) else (BOUNDARY, "")
    # WORD
    return (WORD, "") if (_is_word(c) and c != UNKNOWN_CHAR) else (BOUNDARY, "")


def _run(system: CodeSystem, state: tuple[int, str], text: str) -> tuple[int, str] | None:
    for c in text:
        state = _step(system, state, c)
        if state is None:
            return None
    return state


def _accepting(system: CodeSystem, state: tuple[int, str]) -> bool:
    kind, span = state
    if kind == SPAN:
        return span in system
    return True


_TRAILING_SPAN = re.compile(r"(?<![\w])[A-Za-z][0-9][0-9A-Za-z.]*$")
_LIST_MARK = re.compile(r"^\s*(?:[-*\u2022]+|\d+[.)])\s+")
# a token that may open a code span from a word boundary, or end on a letter that starts one
_OPENER = re.compile(r"(?:^|[^\w])[A-Z](?:[0-9]|$)")


class CodeConstraint(Constraint):
    """Codes of ``system`` only, for one tokenizer (see the module docstring)."""

    def __init__(self, system: CodeSystem, token_texts: list[str], eos_ids: Iterable[int]):
        self.system = system
        self.name = f"codes:{system.name}"
        self.vocab = len(token_texts)
        self.texts = [t.upper() for t in token_texts]
        self.eos = frozenset(int(e) for e in eos_ids)
        self._lock = threading.Lock()
        self._cache: dict[tuple[tuple[str, ...], tuple[int, str]], torch.Tensor] = {}
        empty = [i for i, t in enumerate(self.texts) if t == "" and i not in self.eos]
        self._empty = torch.tensor(empty, dtype=torch.long)
        self._eos = torch.tensor(sorted(e for e in self.eos if e < self.vocab), dtype=torch.long)
        # tokens by first character, for the span states (only characters that can continue a code)
        self._by_first: dict[str, list[int]] = {}
        for i, t in enumerate(self.texts):
            if t and t[0] in SPAN_CHARS and i not in self.eos:
                self._by_first.setdefault(t[0], []).append(i)
        self._nonempty = [i for i, t in enumerate(self.texts) if t and i not in self.eos]
        # after a letter at a word start, a token that does not start with a digit makes the letter
        # an ordinary word (or ends it): the same for every letter
        after = [i for i in self._nonempty if not "0" <= self.texts[i][0] <= "9"
                 and _run(system, (BOUNDARY, "A"), self.texts[i]) is not None]
        self._after_letter = torch.zeros(self.vocab, dtype=torch.bool)
        self._after_letter[torch.tensor(after, dtype=torch.long)] = True
        # tokens that may follow a complete code: they start with a non-word character (not '.')
        # and are fine from a word boundary on
        ends = [i for i in self._nonempty if (t := self.texts[i])[0] not in SPAN_CHARS and t[0] != UNKNOWN_CHAR and not _is_word(t[0])
                and _run(system, _START, t) is not None]
        self._span_end = torch.zeros(self.vocab, dtype=torch.bool)
        self._span_end[torch.tensor(ends, dtype=torch.long)] = True
        self._openers = torch.tensor([i for i in self._nonempty if _OPENER.search(self.texts[i])], dtype=torch.long)

    # -- allowed sets -----------------------------------------------------------------------
    def _scan(self, state: tuple[int, str], ids: Iterable[int], system: CodeSystem | None = None) -> list[int]:
        system = system or self.system
        return [i for i in ids if _run(system, state, self.texts[i]) is not None]

    def _mask(self, ids: list[int], *, base: torch.Tensor | None = None, ending: bool = True) -> torch.Tensor:
        mask = base.clone() if base is not None else torch.zeros(self.vocab, dtype=torch.bool)
        if ids:
            mask[torch.tensor(ids, dtype=torch.long)] = True
        if ending:  # the answer may end here: end-of-sequence and empty (special) tokens too
            mask[self._eos] = True
            mask[self._empty] = True
        return mask

    def _compute(self, state: tuple[int, str], system: CodeSystem | None = None) -> torch.Tensor:
        system = system or self.system
        kind, span = state
        if kind in (BOUNDARY, WORD) and not span:  # free text: every token that opens no bad span
            return self._mask(self._scan(state, self._nonempty, system))
        if kind == BOUNDARY:  # a letter at a word start: only tokens starting with a digit depend on it
            digits = [i for d in "0123456789" for i in self._by_first.get(d, ())]
            return self._mask(self._scan(state, digits, system), base=self._after_letter)
        if kind == SPAN:
            chars = {c for c in SPAN_CHARS if system.is_prefix(span + c)}
            if span in system:
                chars.add(".")
        else:  # DOT_END: "E11.9." may only be followed by a non-word character
            chars = {"."}
        ids = self._scan(state, (i for c in sorted(chars) for i in self._by_first.get(c, ())), system)
        if kind == SPAN and span not in system:  # inside an unfinished code: its continuations only
            return torch.tensor(sorted(ids), dtype=torch.long)
        return self._mask(ids, base=self._span_end)

    def named_codes(self, line: str, state: tuple[int, str]) -> tuple[str, ...]:
        """The codes a span at ``state`` is narrowed to, after the current ``line`` (upper case):
        those of the name before its open parenthesis; () when the line names none (see the module docstring)."""
        kind, span = state
        if kind not in (BOUNDARY, SPAN) or not self.system.names:
            return ()
        # the state's span (the code written so far, or a letter) is the end of the line
        head = line[:len(line) - len(span)].rstrip()
        if not head.endswith("("):
            return ()
        codes = self.system.named(_LIST_MARK.sub("", head[:-1]))
        return codes if codes and any(c.startswith(span) for c in codes) else ()

    def _compute_named(self, codes: tuple[str, ...], state: tuple[int, str]) -> torch.Tensor:
        sub = CodeSystem(f"{self.system.name}:named", codes)
        kind, span = state
        if kind == BOUNDARY and not span:
            # right after "(": only the tokens that open a span (or end on its first letter) change
            mask = self.allowed_for(state).clone()
            bad = [int(i) for i in self._openers if (after := _run(sub, state, self.texts[int(i)])) is None
                   or (after[0] == BOUNDARY and after[1] and not sub.is_prefix(after[1]))]
            if bad:
                mask[torch.tensor(bad, dtype=torch.long)] = False
            return mask
        return self._compute(state, sub)

    def allowed_for(self, state: tuple[int, str], codes: tuple[str, ...] = ()) -> torch.Tensor:
        """Tokens allowed at ``state``; with ``codes`` (:meth:`named_codes`), spans only of those codes."""
        key = (codes, state)
        cached = self._cache.get(key)
        if cached is not None:
            return cached
        value = self._compute_named(codes, state) if codes else self._compute(state)
        with self._lock:
            if len(self._cache) >= 1024:  # bool masks are vocabulary-sized: keep the cache bounded
                self._cache.clear()
            self._cache[key] = value
        return value

    # -- Constraint -------------------------------------------------------------------------
    def begin(self) -> "CodeState":
        return CodeState(self)

    def complete(self, text: str) -> str:
        state = _run(self.system, _START, text.upper())
        if state is not None and _accepting(self.system, state):
            return text
        return _TRAILING_SPAN.sub("", text).rstrip()

    def violations(self, text: str) -> list[str]:
        """Codes in ``text`` (as ``parse_codes`` reads them) that are not in the table."""
        from clinitune.terminology.icd10 import parse_codes

        return [c for c in parse_codes(text) if c not in self.system]


class CodeState(ConstraintState):
    def __init__(self, constraint: CodeConstraint):
        self.c = constraint
        self.state: tuple[int, str] | None = _START
        self.line = ""  # the current line so far (upper case): what a code span may be narrowed by
        self.done = False

    def allowed(self) -> torch.Tensor | None:
        if self.done or self.state is None:
            return None
        return self.c.allowed_for(self.state, self.c.named_codes(self.line, self.state))

    def advance(self, token: int) -> None:
        if self.done:
            return
        if token in self.c.eos:
            self.done = True
            return
        if self.state is None or not 0 <= token < self.c.vocab:
            return
        text = self.c.texts[token]
        self.state = _run(self.c.system, self.state, text)
        self.line = (self.line + text).rsplit("\n", 1)[-1][-400:]

    def holdback(self) -> int:
        if self.done or self.state is None:
            return 0
        kind, span = self.state
        if kind == SPAN and span not in self.c.system:
            return len(span)
        return 0


_COMPILED: dict[tuple, CodeConstraint] = {}
_COMPILE_LOCK = threading.Lock()


def token_texts(tokenizer) -> list[str]:
    """Every token id's text as it appears after earlier text (special tokens as '').

    Each token is decoded after an anchor ("a"), and the anchor's text removed: tokenizers whose
    decoders drop a leading space at the start of a text (SentencePiece) then keep it, so a word
    boundary the token starts with is seen.
    """
    n = len(tokenizer)
    kw = {"skip_special_tokens": True, "clean_up_tokenization_spaces": False}
    anchor = list(tokenizer("a", add_special_tokens=False)["input_ids"])
    prefix = tokenizer.decode(anchor, **kw)
    out = []
    for i, (alone, anchored) in enumerate(zip(tokenizer.batch_decode([[i] for i in range(n)], **kw),
                                              tokenizer.batch_decode([anchor + [i] for i in range(n)], **kw))):
        out.append(anchored[len(prefix):] if anchor and anchored.startswith(prefix) else alone)
    return out


def code_constraint(name: str, tokenizer, eos_ids: Iterable[int]) -> CodeConstraint:
    """The compiled constraint for code system ``name`` and ``tokenizer`` (cached per process)."""
    system = load_code_system(name)
    eos = tuple(sorted(int(e) for e in eos_ids))
    key = (name, system.fingerprint, getattr(tokenizer, "name_or_path", ""), len(tokenizer), id(tokenizer.__class__), eos)
    with _COMPILE_LOCK:
        found = _COMPILED.get(key)
        if found is None:
            found = _COMPILED[key] = CodeConstraint(system, token_texts(tokenizer), eos)
        return found


__all__ = ["CodeConstraint", "CodeState", "code_constraint", "token_texts"]
