"""Fixtures for the review tests: a real evaluation run (two tiny random-init models on toy held-out
notes, in process) whose stored answers campaigns are made from, and fresh review databases."""

from __future__ import annotations

from pathlib import Path

import pytest

PASSWORDS = {"admin": "admin-passphrase-1", "alice": "alice-passphrase-1", "bob": "bob-passphrase-12"}


@pytest.fixture(scope="session")
def eval_dir(tmp_path_factory, write_toy_curated) -> Path:
    from clinitune.evaluate.config import EvalConfig
    from clinitune.evaluate.runner import run_evaluation
    from clinitune.models.tiny import create_tiny_model

    root = tmp_path_factory.mktemp("review-eval")
    cand = create_tiny_model(root / "cand", hidden_size=32, num_layers=2, seed=0)
    base = create_tiny_model(root / "base", hidden_size=32, num_layers=2, seed=1)
    data = write_toy_curated(root / "data", n_train=4, n_validation=2, n_test=30, seed=5)
    cfg = EvalConfig(candidate=str(cand), baseline=str(base), data=str(data), workdir=str(root / "work"), output_dir=str(root / "eval"),
                     generation={"max_new_tokens": 8, "batch_size": 16}, probes={"enabled": False}, canaries={"enabled": False},
                     consistency={"enabled": False}, loss=False, fairness={"min_slice_size": 2},
                     task={"name": "icd10_coding", "options": {"max_note_chars": 300}})
    run_evaluation(cfg, local=True)
    return root / "eval"


@pytest.fixture
def database(tmp_path):
    from clinitune.review.db import Database

    db = Database(f"sqlite:///{tmp_path / 'review.db'}")
    yield db
    db.dispose()


@pytest.fixture
def accounts_in(database):
    """``accounts_in()`` adds admin, alice and bob (reviewers) and returns their ids."""
    from clinitune.review.accounts import add_user

    def make() -> dict[str, int]:
        with database.session() as s:
            return {name: add_user(s, name, pw, "admin" if name == "admin" else "reviewer", min_length=12, actor="test").id
                    for name, pw in PASSWORDS.items()}

    return make


@pytest.fixture
def eval_copy(eval_dir, tmp_path) -> Path:
    """This test's own copy of the evaluation output (closing a campaign rewrites its report)."""
    import shutil

    return Path(shutil.copytree(eval_dir, tmp_path / "eval"))


@pytest.fixture
def campaign_in(database, eval_copy):
    """``campaign_in(n=10, seed=0)`` -> id of a campaign made from (a copy of) the real evaluation run."""
    from clinitune.review.campaigns import create_campaign
    from clinitune.review.source import resolve_eval

    def make(n: int = 10, seed: int = 0) -> int:
        with database.session() as s:
            return create_campaign(s, resolve_eval(str(eval_copy)), n=n, seed=seed, name=None, created_by="test").id

    return make
