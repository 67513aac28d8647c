"""Near-duplicate edits (a changed vital sign, a typo, an added line) and shingle similarity.

Edits work on a note's segments and never touch PHI or diagnosis segments, so the copy's gold
spans stay exact. Each edit is kept only while the copy stays similar to the original
(Jaccard similarity of word 5-gram shingles >= ``MIN_JACCARD``).
"""

from __future__ import annotations

import random
import re

from clinitune.synth.builder import Seg, assemble

MIN_JACCARD = 0.88  # kept with margin above the 0.85 a near duplicate must reach
ADDED_LINES = (
    "Addendum: pt seen and examined, agree with above.\n",
    "Late entry: family updated at bedside.\n",
    "Addendum: reviewed with attending.\n",
    "Note amended to correct medication list.\n",
)
_WORD = re.compile(r"[A-Za-z]{5,}")
_NUM = re.compile(r"\d+(\.\d+)?")


def shingles(text: str, k: int = 5) -> set[tuple[str, ...]]:
    words = text.lower().split()
    if len(words) < k:
        return {tuple(words)}
    return {tuple(words[i:i + k]) for i in range(len(words) - k + 1)}


def shingle_jaccard(a: str, b: str, k: int = 5) -> float:
    """Jaccard similarity of the word ``k``-gram shingle sets of ``a`` and ``b``."""
    sa, sb = shingles(a, k), shingles(b, k)
    union = len(sa | sb)
    return len(sa & sb) / union if union else 1.0


def _change_vital(segs: list[Seg], rng: random.Random) -> bool:
    idx = [i for i, s in enumerate(segs) if s.vital and _NUM.search(s.text)]
    if not idx:
        return False
    i = rng.choice(idx)
    m = _NUM.search(segs[i].text)
    num = m.group(0)
    if "." in num:
        new = f"{float(num) + rng.choice((-0.3, -0.2, 0.1, 0.2, 0.4)):.{len(num.split('.')[1])}f}"
    else:
        new = str(max(1, int(num) + rng.choice((-6, -4, -2, 2, 3, 5))))
    if new == num:
        return False
    text = segs[i].text
    segs[i] = Seg(text[:m.start()] + new + text[m.end():], vital=True)
    return True


def _typo(segs: list[Seg], rng: random.Random) -> bool:
    idx = [i for i, s in enumerate(segs) if s.phi is None and s.code is None and not s.vital and _WORD.search(s.text)]
    if not idx:
        return False
    i = rng.choice(idx)
    text = segs[i].text
    words = list(_WORD.finditer(text))
    m = rng.choice(words)
    w = m.group(0)
    j = rng.randint(1, len(w) - 3)
    kind = rng.randrange(3)
    if kind == 0 and w[j] != w[j + 1]:
        new = w[:j] + w[j + 1] + w[j] + w[j + 2:]  # transposition
    elif kind == 1:
        new = w[:j] + w[j + 1:]  # dropped letter
    else:
        new = w[:j] + w[j] + w[j:]  # doubled letter
    segs[i] = Seg(text[:m.start()] + new + text[m.end():])
    return True


def _add_line(segs: list[Seg], rng: random.Random) -> bool:
    idx = [i for i, s in enumerate(segs) if s.text.endswith("\n") and i < len(segs) - 1]
    if not idx:
        return False
    segs.insert(rng.choice(idx) + 1, Seg(rng.choice(ADDED_LINES)))
    return True


EDITS = (_change_vital, _typo, _add_line)


def near_duplicate(segs: list[Seg], rng: random.Random) -> list[Seg]:
    """A copy of ``segs`` with 1-3 small edits that keeps word-5-gram Jaccard >= MIN_JACCARD."""
    original = assemble(segs).text
    out = list(segs)
    applied = 0
    for edit in rng.sample(EDITS, rng.randint(1, 3)):
        trial = list(out)
        if edit(trial, rng) and shingle_jaccard(original, assemble(trial).text) >= MIN_JACCARD:
            out = trial
            applied += 1
    if not applied:  # nothing fitted: one typo (or one added line) is the smallest change there is
        if not _typo(out, rng):
            _add_line(out, rng)
    return out
