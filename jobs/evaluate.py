"""Ray Job entrypoint for evaluation (candidate vs baseline on held-out patients, optional gate):
``clinitune evaluate`` (same flags; ``--config`` defaults to jobs/configs/evaluate.yaml).

    ray job submit --working-dir . -- python jobs/evaluate.py --candidate work/models/ft-abc \
        --policy jobs/configs/gate.yaml
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))  # _entry beside this file, however it is loaded
from _entry import run  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    return run(["evaluate"], "evaluate.yaml", argv)


if __name__ == "__main__":
    sys.exit(main())
