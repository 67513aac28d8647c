"""Training data: curated notes or chat JSONL -> tokenised, label-masked sequences (``clinitune data``).

* ``build_dataset(DataConfig) -> Path``: Ray Data build, cached by content hash.
* ``load_split(dir, split)``: the trainable rows as a Ray Dataset, for ``get_dataset_shard``.
* Task builders (``icd10_coding``, ``instructions``) in ``clinitune.data.builders``.
"""

from __future__ import annotations

from clinitune._lazy import lazy_getattr

_EXPORTS = {
    "DataConfig": "clinitune.data.config",
    "build_dataset": "clinitune.data.build",
    "load_manifest": "clinitune.artifacts.tokenized",
    "load_split": "clinitune.artifacts.tokenized",
    "register_builder": "clinitune.data.builders",
    "format_codes": "clinitune.terminology.icd10",
    "parse_codes": "clinitune.terminology.icd10",
}
__all__ = sorted(_EXPORTS)

__getattr__ = lazy_getattr(__name__, _EXPORTS)
