"""Ray Tune over fine-tuning: three trials, ASHA stops the weak one, the best is exported, all in MLflow."""

from __future__ import annotations

import json

import pytest
import yaml

pytestmark = pytest.mark.ray


def _study(make_cfg, tmp_path, **over):
    from clinitune.tune.config import TuneConfig

    finetune = make_cfg(training__max_steps=8, training__log_every_n_steps=2, eval__every_n_steps=2,
                        checkpoint__every_n_steps=8).model_dump(mode="json")
    d = {
        "finetune": finetune,
        "search": "grid",
        # one good learning rate and two that barely move the weights: ASHA must stop a weak one
        "search_space": {"training.learning_rate": {"type": "grid", "values": [3e-3, 1e-7, 2e-7]}},
        "num_samples": 1,
        "asha": {"grace_period": 2, "reduction_factor": 2},
        "max_concurrent_trials": 1,
        "name": "study-under-test",
        "output_dir": str(tmp_path / "best"),
    }
    d.update(over)
    return TuneConfig.model_validate(d)


def test_three_trials_asha_stops_a_weak_one_and_the_best_is_exported(ray_session, make_cfg, tmp_path):
    from clinitune import tracking
    from clinitune.tune.runner import run_tune

    cfg = _study(make_cfg, tmp_path)
    outcome = run_tune(cfg)

    assert len(outcome.trials) == 3
    by_lr = {t["config"]["training.learning_rate"]: t for t in outcome.trials}
    assert by_lr[3e-3]["status"] == "completed"
    stopped = [t for t in outcome.trials if t["status"] == "stopped_early"]
    assert stopped, f"ASHA stopped no trial: {outcome.trials}"
    assert all(t["step"] < 8 for t in stopped)

    # the best trial is the good learning rate; its artifact and config are exported
    assert outcome.best_config["training"]["learning_rate"] == 3e-3
    assert (outcome.artifact_dir / "adapter" / "adapter_model.safetensors").is_file()
    best_cfg = yaml.safe_load((outcome.artifact_dir / "best_config.yaml").read_text())
    assert best_cfg["training"]["learning_rate"] == 3e-3
    summary = json.loads((outcome.artifact_dir / "tune_summary.json").read_text())
    assert summary["best_trial"] == outcome.best_trial and len(summary["trials"]) == 3

    # every trial is an MLflow child run of the study; stopped ones are marked KILLED
    uri = tracking.resolve_tracking_uri(None, cfg.finetune.workdir)
    c = tracking.client(uri)
    exp = c.get_experiment_by_name(cfg.finetune.tracking.experiment)
    parent = c.search_runs([exp.experiment_id], filter_string="tags.`clinitune.study` = 'study-under-test'")[0]
    children = c.search_runs([exp.experiment_id], filter_string=f"tags.`mlflow.parentRunId` = '{parent.info.run_id}'")
    assert len(children) == 3
    assert sorted(r.info.status for r in children).count("FINISHED") == 3 - len(stopped)
    assert all(r.info.status in ("FINISHED", "KILLED") for r in children)
    assert parent.info.status == "FINISHED" and "best_val_loss" in parent.data.metrics


def test_search_space_errors_are_one_line_before_any_trial(make_cfg, tmp_path):
    from clinitune.errors import ConfigError
    from clinitune.tune.runner import check_search_space

    with pytest.raises(ConfigError, match="no such finetune config key"):
        check_search_space(_study(make_cfg, tmp_path, search="optuna",
                                  search_space={"training.learnig_rate": {"type": "loguniform", "low": 1e-5, "high": 1e-3}}))
    with pytest.raises(ConfigError, match="lora.r: value 0"):
        check_search_space(_study(make_cfg, tmp_path, search="optuna",
                                  search_space={"lora.r": {"type": "choice", "values": [0, 8]}}))
    with pytest.raises(ConfigError, match="cannot be searched"):
        check_search_space(_study(make_cfg, tmp_path, search="optuna",
                                  search_space={"scaling.num_workers": {"type": "choice", "values": [1, 2]}}))
    with pytest.raises(ConfigError, match="search: grid needs"):
        _study(make_cfg, tmp_path, search_space={"lora.r": {"type": "choice", "values": [4, 8]}})


def test_tune_space_maps_every_distribution(make_cfg, tmp_path):
    from ray.tune.search.sample import Categorical, Float, Integer

    from clinitune.tune.runner import tune_space

    space = tune_space(_study(make_cfg, tmp_path, search="optuna", search_space={
        "training.learning_rate": {"type": "loguniform", "low": 1e-5, "high": 1e-3},
        "lora.dropout": {"type": "uniform", "low": 0.0, "high": 0.1},
        "lora.r": {"type": "choice", "values": [8, 16]},
        "training.epochs": {"type": "randint", "low": 1, "high": 3},
    }))
    assert isinstance(space["training.learning_rate"], Float) and isinstance(space["lora.dropout"], Float)
    assert isinstance(space["lora.r"], Categorical) and isinstance(space["training.epochs"], Integer)


@pytest.mark.slow
def test_optuna_search_runs_trials(ray_session, make_cfg, tmp_path):
    from clinitune.tune.runner import run_tune

    outcome = run_tune(_study(make_cfg, tmp_path, search="optuna", num_samples=2, name="optuna-under-test",
                              search_space={"training.learning_rate": {"type": "loguniform", "low": 1e-4, "high": 5e-3},
                                            "lora.r": {"type": "choice", "values": [4, 8]}}))
    assert len(outcome.trials) == 2 and outcome.artifact_dir.is_dir()


def test_a_stopped_trials_late_failure_does_not_undo_killed(tmp_path):
    """The study marks a stopped trial KILLED; the trial's own handler, unwinding after that,
    must not turn it back into FAILED (it did, now and then, on a loaded machine)."""
    from clinitune import tracking

    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    run = tracking.start_run(uri, "e", "trial", artifact_root=tmp_path / "art")
    tracking.end_run(uri, run, "KILLED")
    tracking.end_run(uri, run, "FAILED", only_if_running=True)
    assert tracking.client(uri).get_run(run).info.status == "KILLED"
    live = tracking.start_run(uri, "e", "live", artifact_root=tmp_path / "art")
    tracking.end_run(uri, live, "FAILED", only_if_running=True)
    assert tracking.client(uri).get_run(live).info.status == "FAILED"
