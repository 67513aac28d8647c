"""Ray Job entrypoint for curation: ``clinitune curate`` (same flags; ``--config`` defaults to
jobs/configs/curate.yaml).

    ray job submit --working-dir . -- python jobs/curate.py --input /data/notes --output /data/curated
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))  # _entry beside this file, however it is loaded
from _entry import run  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    return run(["curate"], "curate.yaml", argv)


if __name__ == "__main__":
    sys.exit(main())
