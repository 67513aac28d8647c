"""Ray Job entrypoint for hyperparameter search over fine-tuning (Ray Tune, ASHA, Optuna):
``clinitune tune`` (same flags; ``--config`` defaults to jobs/configs/tune.yaml).

    ray job submit --working-dir . -- python jobs/tune.py --config jobs/configs/tune.yaml
"""

from __future__ import annotations

import sys

from _entry import run

if __name__ == "__main__":
    sys.exit(run(["tune"], "jobs/configs/tune.yaml"))
