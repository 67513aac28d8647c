"""Ray Job entrypoint for evaluation (candidate vs baseline on held-out patients, optional gate):
``clinitune evaluate`` (same flags; ``--config`` defaults to jobs/configs/evaluate.yaml).

    ray job submit --working-dir . -- python jobs/evaluate.py --candidate work/models/ft-abc \
        --policy jobs/configs/gate.yaml
"""

from __future__ import annotations

import sys

from _entry import run

if __name__ == "__main__":
    sys.exit(run(["evaluate"], "jobs/configs/evaluate.yaml"))
