"""Tuning tests use the training tests' fixtures (tiny model, small curated set, make_cfg): one definition, in tests/train/conftest.py."""

from __future__ import annotations

import importlib.util
from pathlib import Path

_spec = importlib.util.spec_from_file_location("clinitune_tests_train_fixtures", Path(__file__).parents[1] / "train" / "conftest.py")
_train = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_train)

tiny_model = _train.tiny_model
curated = _train.curated
data_cache = _train.data_cache
make_cfg = _train.make_cfg
