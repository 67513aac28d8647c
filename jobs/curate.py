"""Ray Job entrypoint for curation: ``clinitune curate`` (same flags; ``--config`` defaults to
jobs/configs/curate.yaml).

    ray job submit --working-dir . -- python jobs/curate.py --input /data/notes --output /data/curated
"""

from __future__ import annotations

import sys

from _entry import run

if __name__ == "__main__":
    sys.exit(run(["curate"], "jobs/configs/curate.yaml"))
