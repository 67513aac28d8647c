"""Drug names: the lexicon of the ``drug-named-entity-recognition`` package (DrugBank, MeSH,
MedlinePlus and NHS names), single words only.

Common English words are left out unless they are a drug's own canonical name ("aspirin" stays,
"gold" goes): a caller passes its English word list. Curation's clinical-content guard and the PHI
ensemble's typed check (a drug is not a person's or a place's name) read the same list.
"""

from __future__ import annotations

import bz2
import pickle
from importlib import resources


def drug_names(english: frozenset[str]) -> frozenset[str]:
    """Single-word drug names of at least four letters, common English words left out unless canonical."""
    try:
        path = resources.files("drug_named_entity_recognition") / "drug_ner_dictionary.pkl.bz2"
        with bz2.open(str(path)) as f:
            data = pickle.load(f)  # noqa: S301 - the package's own data file
    except (ModuleNotFoundError, FileNotFoundError, OSError) as err:
        raise RuntimeError(
            "the drug lexicon needs the 'drug-named-entity-recognition' package "
            f"({type(err).__name__}). Fix: pip install 'drug-named-entity-recognition>=2.0'."
        ) from None
    canonical = {k for k in data["drug_canonical_to_data"] if " " not in k}
    out = set()
    for variant in data["drug_variant_to_canonical"]:
        if " " in variant or len(variant) < 4 or not variant.isalpha():
            continue
        if variant in english and variant not in canonical:
            continue
        out.add(variant)
    return frozenset(out)
