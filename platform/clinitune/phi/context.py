"""Context rules over the words of one note: names (:mod:`clinitune.phi.names`) and places
(:mod:`clinitune.phi.places`), both reading the note's casing (:mod:`clinitune.phi.tokens`)."""

from __future__ import annotations

from clinitune.phi.lexicons import Lexicons
from clinitune.phi.names import NameRules
from clinitune.phi.places import PlaceRules
from clinitune.phi.tokens import Tok, casing, tokenize

__all__ = ["ContextRules", "tokenize", "casing"]

Hit = tuple[int, int, str, float]


class ContextRules:
    def __init__(self, lex: Lexicons):
        self.lex = lex
        self.names = NameRules(lex)
        self.places = PlaceRules(lex)

    def detect(self, text: str, toks: list[Tok]) -> list[Hit]:
        mode = casing(text)
        hits, is_name = self.names.detect(text, toks, mode)
        hits.extend(self.places.detect(text, toks, mode, is_name))
        return hits
