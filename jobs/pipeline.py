"""Ray Job entrypoint for one tick of the continuous loop (cron or a KubeRay RayJob runs it):
``clinitune pipeline run`` (same flags; ``--config`` defaults to jobs/configs/pipeline.yaml).

    ray job submit --working-dir . -- python jobs/pipeline.py --config jobs/configs/pipeline.yaml

Idempotent: with nothing new in the inbox it does nothing; after a crash it resumes the
unfinished run at its first unfinished stage.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))  # _entry beside this file, however it is loaded
from _entry import run  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    return run(["pipeline", "run"], "pipeline.yaml", argv)


if __name__ == "__main__":
    sys.exit(main())
