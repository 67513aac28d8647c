"""The PHI taxonomy: the 18 HIPAA Safe Harbor identifier kinds as Clinitune names them."""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum


class PhiType(str, Enum):
    NAME = "NAME"  # patients, relatives, clinicians, initials
    LOCATION = "LOCATION"  # hospitals, units, streets, cities, states, countries
    ZIP = "ZIP"
    DATE = "DATE"  # every date form except a bare year
    YEAR = "YEAR"  # a bare year ("'84", "1993", "1980s")
    AGE = "AGE"  # ages over 89
    PHONE = "PHONE"  # phone and pager numbers
    FAX = "FAX"
    EMAIL = "EMAIL"
    SSN = "SSN"
    MRN = "MRN"  # medical record numbers
    HEALTH_PLAN = "HEALTH_PLAN"  # health-plan beneficiary numbers
    ACCOUNT = "ACCOUNT"
    LICENSE = "LICENSE"  # certificate / licence numbers
    VEHICLE = "VEHICLE"  # vehicle ids, serial numbers, plates
    DEVICE = "DEVICE"  # device identifiers and serial numbers
    URL = "URL"
    IP = "IP"
    BIOMETRIC = "BIOMETRIC"
    ID = "ID"  # any other unique identifying number or code


ALL_PHI_TYPES = tuple(t.value for t in PhiType)


@dataclass(frozen=True, order=True)
class Span:
    """One PHI mention: character offsets into the note (end exclusive), kind and confidence."""

    start: int
    end: int
    type: str
    score: float = 1.0

    def to_dict(self) -> dict:
        return {"start": self.start, "end": self.end, "type": self.type, "score": round(self.score, 3)}
