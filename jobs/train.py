"""Ray Job entrypoint for fine-tuning (LoRA, QLoRA, full with DeepSpeed) on Ray Train: ``clinitune train``
(same flags; ``--config`` defaults to jobs/configs/train.yaml).

    ray job submit --working-dir . -- python jobs/train.py --config jobs/configs/train.yaml

Submitting the same config again resumes the run from its last checkpoint (or, when it already
finished, only re-exports its artifact).
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))  # _entry beside this file, however it is loaded
from _entry import run  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    return run(["train"], "train.yaml", argv)


if __name__ == "__main__":
    sys.exit(main())
