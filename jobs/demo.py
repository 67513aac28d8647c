"""``make demo``: the whole story offline on a laptop CPU, in at most 20 minutes:
``clinitune pipeline demo`` (same flags; ``--config`` defaults to jobs/configs/demo.yaml).

synthetic notes -> curation with de-identification -> ICD-10 coding training set -> LoRA
fine-tuning of the embedded SmolLM2-135M -> evaluation vs the base model on held-out patients ->
gate -> MLflow registry. Prints the report path and a short table.

    python jobs/demo.py --workdir work/demo [--config jobs/configs/demo.yaml]
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))  # _entry beside this file, however it is loaded
from _entry import run  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    return run(["pipeline", "demo"], "demo.yaml", argv)


if __name__ == "__main__":
    sys.exit(main())
