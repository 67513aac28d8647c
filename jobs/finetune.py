"""Ray Job entrypoint for fine-tuning (LoRA, QLoRA, full with DeepSpeed) on Ray Train.

    ray job submit --working-dir . -- python jobs/finetune.py --config jobs/configs/finetune.yaml

Submitting the same config again resumes the run from its last checkpoint (or, when it already
finished, only re-exports its artifact).
"""

from __future__ import annotations

import argparse
import sys


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", default="jobs/configs/finetune.yaml", help="Finetune config YAML.")
    parser.add_argument("--output-dir", help="Override output_dir (the model artifact directory).")
    parser.add_argument("--run-name", help="Override checkpoint.run_name (the same name resumes).")
    args = parser.parse_args(argv)

    from clinitune.cli.main import main as cli_main

    cmd = ["train", "--config", args.config]
    if args.output_dir:
        cmd += ["--output-dir", args.output_dir]
    if args.run_name:
        cmd += ["--run-name", args.run_name]
    return cli_main(cmd)


if __name__ == "__main__":
    sys.exit(main())
