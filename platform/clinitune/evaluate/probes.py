"""Forgetting probes: a small general-skills set shipped with the package, scored per family.

``data/probes.jsonl`` holds one probe per line: ``id``, ``family`` (arithmetic, knowledge,
format), ``prompt`` (a single user turn) and how the answer is checked:

* ``number``: the first number in the answer equals ``answer``;
* ``contains``: one of the ``answer`` strings appears in the answer as whole words (any case);
* ``regex``: the whole stripped answer matches ``answer`` (``flags`` "i" = ignore case);
* ``json``: the answer holds a JSON object with exactly the ``answer`` key/values.

Both models answer the same probes; the regression of a family is baseline accuracy minus
candidate accuracy (positive = the candidate forgot something).
"""

from __future__ import annotations

import json
import re
from functools import lru_cache
from importlib import resources

from clinitune.errors import ConfigError

_NUMBER = re.compile(r"-?\d+(?:\.\d+)?")
_JSON = re.compile(r"\{.*?\}", re.S)


@lru_cache(maxsize=1)
def _load() -> tuple[dict, ...]:
    text = resources.files("clinitune.evaluate").joinpath("data/probes.jsonl").read_text(encoding="utf-8")
    return tuple(json.loads(line) for line in text.splitlines() if line.strip())


def probe_families() -> list[str]:
    return sorted({p["family"] for p in _load()})


def load_probes(families: list[str] | None = None, max_per_family: int | None = None) -> list[dict]:
    """The built-in probes of ``families`` (all when None), at most ``max_per_family`` each, in file order."""
    known = probe_families()
    wanted = families if families is not None else known
    unknown = [f for f in wanted if f not in known]
    if unknown:
        raise ConfigError(f"probes.families: unknown probe family '{unknown[0]}'.", fix=f"use some of: {', '.join(known)}.")
    out, seen = [], {f: 0 for f in wanted}
    for p in _load():
        fam = p["family"]
        if fam in seen and (max_per_family is None or seen[fam] < max_per_family):
            seen[fam] += 1
            out.append(dict(p))
    return out


def score_probe(probe: dict, answer: str) -> bool:
    """True when ``answer`` passes the probe's check."""
    kind, expected = probe["check"], probe["answer"]
    text = str(answer).strip()
    if kind == "number":
        m = _NUMBER.search(text.replace(",", ""))
        return bool(m) and float(m.group(0)) == float(expected)
    if kind == "contains":
        low = text.lower()
        return any(re.search(rf"(?<!\w){re.escape(str(a).lower())}(?!\w)", low) for a in expected)
    if kind == "regex":
        flags = re.I if "i" in probe.get("flags", "") else 0
        return re.fullmatch(expected, text, flags) is not None
    if kind == "json":
        for m in _JSON.finditer(text):
            try:
                obj = json.loads(m.group(0))
            except json.JSONDecodeError:
                continue
            if obj == expected:
                return True
        return False
    raise ValueError(f"probe {probe.get('id')}: unknown check '{kind}'")


def family_accuracy(rows: list[tuple[dict, str]]) -> dict[str, dict]:
    """Per family: n, correct, accuracy, from (probe, answer) pairs."""
    out: dict[str, dict] = {}
    for probe, answer in rows:
        fam = out.setdefault(probe["family"], {"n": 0, "correct": 0})
        fam["n"] += 1
        fam["correct"] += int(score_probe(probe, answer))
    for fam in out.values():
        fam["accuracy"] = fam["correct"] / fam["n"] if fam["n"] else 0.0
    return out
