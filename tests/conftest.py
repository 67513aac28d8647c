"""Shared fixtures. One session-scoped local Ray cluster serves every Ray test."""

from __future__ import annotations

import os

import pytest

os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


@pytest.fixture(scope="session")
def ray_session():
    """A local Ray cluster shared by the whole test session (2 logical CPUs more than cores is fine)."""
    import ray
    from ray.data import DataContext

    from clinitune.ray_utils import LOCAL_SYSTEM_CONFIG

    if not ray.is_initialized():
        ray.init(
            num_cpus=4, include_dashboard=False, log_to_driver=False, ignore_reinit_error=True,
            _system_config=LOCAL_SYSTEM_CONFIG,
        )
    ctx = DataContext.get_current()
    ctx.enable_progress_bars = False
    yield ray
    ray.shutdown()
