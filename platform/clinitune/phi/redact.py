"""placeholder"""
from dataclasses import dataclass, field
@dataclass
class Redaction:
    text: str
    spans: list = field(default_factory=list)
    counts: dict = field(default_factory=dict)
