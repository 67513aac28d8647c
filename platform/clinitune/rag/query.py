"""Retrieval queries from a note's clinical content, one per problem.

A whole coding prompt is a poor query: the instruction, headers, vitals, names and sign-offs
dilute what matters, and one query finds passages for one or two of a note's problems at best.
:func:`clinical_queries` reads the note the way a coder does and returns a short query per
problem, from

* diagnosis / problem / assessment / impression / findings / history sections: one query per list
  item (``1.``, ``#``, ``-``, ``•``) or short line; for ``# problem: plan`` lines the problem part;
* inline lists (``PMH: a, b and c``), split into items, with qualifiers (``single episode``,
  ``unspecified``) kept on the item they qualify;
* the reason for the encounter in narrative (``admitted ... with X``, ``presents with X``).

Negated findings (``No pleural effusion``), vitals and plan details are left out; duplicates are
dropped. A text in which nothing is recognised (a question, free prose) is its own single query, so
general chat retrieves as before. The same function builds the queries in evaluation, in
retrieval-aware training data and in serving (``clinitune.rag.prompt.queries_of``).
"""

from __future__ import annotations

import re

MAX_QUERIES = 8
MAX_WORDS = 12
FALLBACK_CHARS = 1000

# section headers: where problems are listed, and what is certainly something else
_CLINICAL = re.compile(
    r"diagnos|\bdx\b|problem|assessment|impression|finding|\ba\s*[/&]?\s*p\b|hospital course|course by problem|"
    r"\bpmh\b|past medical|medical history|reason for|chief complaint|indication|conclusion|comorbid", re.I)
_SECTION = re.compile(
    _CLINICAL.pattern + r"|vital|\bvs\b|medication|\bmeds\b|allerg|dispo|family|social|contact|signed|dictated|signature|"
    r"address|account|technique|comparison|exam|ordering|date|patient|\bpt\b|mrn|dob|attending|service|safety|skin|"
    r"neuro|resp|lungs|\bcv\b|heent|\bgen\b|\bext\b|\babd\b|\bgi\b|\bgu\b|pain|psychosocial|education|follow|plan|"
    r"history|\bhpi\b|\bs\b|\bo\b|subjective|objective|interval|labs?\b|results|procedure|author|provider|day\b|admission|"
    r"discharge|instructions|code status|diet|activity|condition", re.I)
_INLINE_LIST = re.compile(r"\bpmh\b|past medical|medical history|comorbid|problem list", re.I)
_DETAIL_LABEL = re.compile(r"reasoning|treatment|testing|plan|education|counsel|follow|agreement|instruction|monitor|goal", re.I)
_HEADER_LINE = re.compile(r"^\s*(?P<head>[A-Za-z][A-Za-z0-9 /&()'-]{0,48}?)\s*:\s*(?P<rest>.*)$")
_BULLET = re.compile(r"^\s*(?:[#*\u2022\u25cf\-\u2013]+|\(?\d{1,2}[.)])\s*")
_INLINE_SECTION = re.compile(r"(?<=[.;]\s)\s*(?:assessment|impression|diagnos[ie]s|dx|a/p|problems?)\s*:\s*([^.;\n]+)", re.I)
_NARRATIVE = re.compile(r"\b(?:patient|pt|admitted|adm|presented|presents|presenting|found to have|diagnosed with)\b[^.\n]*?"
                        r"(?:\b(?:w/|with|for)\s+|(?<=have)\s+|(?<=with)\s+)([^.;\n]+)", re.I)
_INLINE_PMH = re.compile(r"\b(?:PMH|past medical history|h/o|hx of|hx|history of)(?!\s+present)\s*:?\s+([^.\n]+)", re.I)
_SUMMARY = re.compile(r"^\d{1,3}\s*(?:yo|y/o|y\.o\.|-?year-old|year old|[MF])\b[^.]*?\b(?:with|w/)\s+(?P<rest>[^.]+)", re.I)
_NEGATED = re.compile(r"^(?:no|not|negative|denies|without|resolved|normal|unremarkable)\b", re.I)
_NOT_A_PROBLEM = re.compile(r"discussed|signed|dictated|pager|\bcalled\b|\bcont\b|continue|reassess|encourage|"
                            r"ambulat|reports|tolerat|\bagree|updated|\brtc\b|return to|home in|\bf/u\b|follow|"
                            r"r/o\b|rule out|evaluation of|\bplan\b|referral|email|phone|\bfax\b|on file", re.I)
# what trails a diagnosis after a comma in CMS names ("..., single episode, unspecified")
_QUALIFIER = re.compile(r"^(?:unspecified(?: organism| as to cause| type| site)?|uncomplicated|single episode|recurrent|"
                        r"without complications?|with complications|not elsewhere classified|initial encounter|"
                        r"site unspecified|mild|moderate|severe|improving|stable)$", re.I)
_LEAD = re.compile(r"^(?:(?:and|or|h/o|hx of|history of|of|known|likely|possible|probable|suspected|there is|there are|"
                   r"found to have|s/p|status post|significant for|notable for|remarkable for|positive for|"
                   r"(?:findings )?consistent with|compatible with|suggestive of|concerning for)\s+)+", re.I)
_TRAIL = re.compile(r",?\s+(?:improving|stable|resolved|resolving|worsening|and admitted|, improving)$", re.I)
_NUMERIC = re.compile(r"\d")


def _note_part(text: str) -> str:
    """The note of a coding prompt (after a 'Note:' marker), else the whole text."""
    m = re.search(r"(?:^|\n)\s*note\s*:\s*\n", text, re.I)
    return text[m.end():] if m else text


def _clean(item: str) -> str | None:
    s = _BULLET.sub("", item).strip()
    s = re.split(r"\s+(?:-|--|\u2013)\s+|;|: |\. |, see |\bsee impression\b|\s+(?:who|which|that)\s+|"
                 r",\s*(?=(?:continue|cont|monitor|plan|f/u|follow|start|stop|hold|will|discussed)\b)", s, maxsplit=1)[0]
    s = _LEAD.sub("", s.strip(" .,:;"))
    s = _TRAIL.sub("", s.strip(" .,:;")).strip(" .,:;")
    if not s or _NEGATED.match(s) or _NOT_A_PROBLEM.search(s):
        return None
    words = s.split()
    if len(s) < 3:
        return None
    letters = sum(c.isalpha() for c in s)
    if letters < 3 or len(_NUMERIC.findall(s)) > letters / 3:  # vitals, dates, doses, phone numbers
        return None
    return " ".join(words[:MAX_WORDS])


def _key(query: str) -> str:
    return " ".join(re.sub(r"\([^)]*\)|\[[^\]]*\]|[^a-z0-9 ]", " ", query.lower()).split())


def _split_inline(rest: str) -> list[str]:
    """``a, b and c`` -> items, keeping qualifiers (``single episode``, ``unspecified``) on their item."""
    rest = re.split(r"\s+(?:who|which|that)\s+|\.\s", rest, maxsplit=1)[0]
    parts = [p.strip() for p in re.split(r",\s*|;\s*|\s+and\s+", rest) if p.strip()]
    items: list[str] = []
    for p in parts:
        if items and _QUALIFIER.match(p):
            items[-1] = f"{items[-1]}, {p}"
        else:
            items.append(p)
    return items


def _problem(line: str) -> list[str]:
    """A line of a clinical section -> its problems ('# x: plan' -> x; a summary sentence -> its list)."""
    body = _BULLET.sub("", line).strip()
    m = _SUMMARY.match(body)
    if m:
        return _split_inline(m.group("rest"))
    head = _HEADER_LINE.match(body)
    if head:
        if _DETAIL_LABEL.search(head.group("head")) and not line.lstrip().startswith("#"):
            return []
        body = head.group("head")
    return [body]


def clinical_queries(text: str, max_queries: int = MAX_QUERIES) -> list[str]:
    """Queries for ``text`` (a note or a prompt holding one): one per problem, else the text itself."""
    note = _note_part(str(text))
    structured: list[str] = []
    narrative: list[str] = []
    in_clinical = False
    for raw in note.splitlines():
        line = raw.strip()
        if not line:
            continue
        narrative.extend(m.group(1) for m in _NARRATIVE.finditer(line))
        structured.extend(m.group(1) for m in _INLINE_SECTION.finditer(line))  # "... . Assessment: x." mid-line
        for m in _INLINE_PMH.finditer(line):
            narrative.extend(_split_inline(m.group(1)))
        bulleted = bool(_BULLET.match(raw))
        header = None if bulleted else _HEADER_LINE.match(line)
        if header and _SECTION.search(header.group("head")):  # a section header (with its first line)
            head, rest = header.group("head"), header.group("rest")
            in_clinical = bool(_CLINICAL.search(head))
            if in_clinical and rest:
                target = narrative if _SUMMARY.match(rest) else structured
                target.extend(_split_inline(rest) if _INLINE_LIST.search(head) else _problem(rest))
            continue
        if not bulleted and line.isupper() and len(line.split()) <= 6:  # an all-caps section header
            in_clinical = bool(_CLINICAL.search(line))
            continue
        if in_clinical:  # a one-line summary ("56 yo male with a and b") splits less reliably: after the list
            (narrative if _SUMMARY.match(_BULLET.sub("", line)) else structured).extend(_problem(raw))
    queries: list[str] = []
    seen: set[str] = set()
    for item in structured + narrative:
        q = _clean(item)
        if q and _key(q) not in seen:
            seen.add(_key(q))
            queries.append(q)
        if len(queries) >= max_queries:
            break
    if not queries:
        fallback = " ".join(str(text).split())[:FALLBACK_CHARS]
        return [fallback] if fallback else []
    return queries
