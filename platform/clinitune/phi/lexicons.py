"""Word lists the detector consults, loaded once per process from ``clinitune/phi/data``.

See ``data/SOURCES.json`` and :mod:`clinitune.phi.lexicon_build` for where each list comes from.
Lists are kept as Python ``frozenset`` objects (fast membership tests on lower-cased tokens) and an
Aho-Corasick automaton for multi-word places. A process holds one copy whatever the number of
engines in it.
"""

from __future__ import annotations

import gzip
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import ahocorasick

DATA_DIR = Path(__file__).with_name("data")

# Function words and words that follow a title or a relative without being a name.
STOPWORDS = frozenset(
    """a an the and or but nor to of in on at by for with from into onto over under about after before
    per via re is was were be been being am are has had have having will would can could may might
    shall should must did does do doing done not no yes he she it his her hers him they them their
    theirs we us our you your i me my mine this that these those there here then than as so if also
    too very all any some each both who whom whose what when where which why how up out off down
    just now still again once only own same other such more most less few many much one two three
    aware notified paged called calling informed updated update spoke speak speaking visited visiting
    came come coming went going gone left arrived present states stated said says asked asks wants
    wanted feels felt made make saw seen see note noted notes team office order orders ordered
    following follow follows regarding re: will be pt pt's patient patients family families
    home house hospital visit visits in to bedside here there today tonight tomorrow yesterday
    cell phone number mother father son daughter wife husband sister brother""".split()
)


COMMON_SURNAMES = 30000  # Census rank below which a surname counts as a name without context


def _read_ordered(name: str) -> list[str]:
    with gzip.open(DATA_DIR / name, "rt", encoding="utf-8") as fh:
        return [line.strip() for line in fh if line.strip()]


def _read(name: str) -> frozenset[str]:
    path = DATA_DIR / name
    opener = gzip.open if name.endswith(".gz") else open
    words: set[str] = set()
    with opener(path, "rt", encoding="utf-8") as fh:  # type: ignore[operator]
        for line in fh:
            line = line.split("#", 1)[0].strip().lower()
            if not line:
                continue
            if name.endswith(".txt"):  # hand-written lists: several words a line
                words.update(line.split())
            else:
                words.add(line)
    return frozenset(words)


@dataclass(frozen=True)
class Lexicons:
    first: frozenset[str]
    last: frozenset[str]
    common_last: frozenset[str]  # the most frequent surnames (Census rank)
    english: frozenset[str]
    medical: frozenset[str]
    clinical: frozenset[str]
    places: frozenset[str]  # single-word place names
    states: frozenset[str]
    world: frozenset[str]  # countries and continents: not identifiers
    place_automaton: ahocorasick.Automaton  # multi-word place names, lower case

    def is_common(self, w: str) -> bool:
        """An ordinary word: English, medical or clinical vocabulary, or a function word."""
        return w in self.english or w in self.clinical or w in self.medical or w in STOPWORDS or w in self.world

    def is_name(self, w: str) -> bool:
        return w in self.first or w in self.last


@lru_cache(maxsize=1)
def load() -> Lexicons:
    places_all = _read("us_places.txt.gz")
    auto = ahocorasick.Automaton()
    single = set()
    for p in places_all:
        if " " in p or "-" in p:
            auto.add_word(p, p)
        else:
            single.add(p)
    for p in _read("us_states.txt.gz"):
        if " " in p:
            auto.add_word(p, p)
    auto.make_automaton()
    last = _read_ordered("last_names.txt.gz")
    return Lexicons(
        first=_read("first_names.txt.gz"),
        last=frozenset(last),
        common_last=frozenset(last[:COMMON_SURNAMES]),
        english=_read("english_words.txt.gz"),
        medical=_read("medical_words.txt.gz"),
        clinical=_read("clinical_terms.txt"),
        places=frozenset(single),
        states=_read("us_states.txt.gz"),
        world=frozenset(w for p in _read("world_names.txt.gz") for w in [p] if " " not in p),
        place_automaton=auto,
    )
