"""Ray Job entrypoint for hyperparameter search over fine-tuning (Ray Tune, ASHA, Optuna):
``clinitune tune`` (same flags; ``--config`` defaults to jobs/configs/tune.yaml).

    ray job submit --working-dir . -- python jobs/tune.py --config jobs/configs/tune.yaml
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))  # _entry beside this file, however it is loaded
from _entry import run  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    return run(["tune"], "tune.yaml", argv)


if __name__ == "__main__":
    sys.exit(main())
