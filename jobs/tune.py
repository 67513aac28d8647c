"""Ray Job entrypoint for hyperparameter search over fine-tuning (Ray Tune, ASHA, Optuna).

    ray job submit --working-dir . -- python jobs/tune.py --config jobs/configs/tune.yaml
"""

from __future__ import annotations

import argparse
import sys


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", default="jobs/configs/tune.yaml", help="Tune config YAML.")
    parser.add_argument("--output-dir", help="Override output_dir (the best trial's exported artifact).")
    args = parser.parse_args(argv)

    from clinitune.cli.main import main as cli_main

    cmd = ["tune", "--config", args.config]
    if args.output_dir:
        cmd += ["--output-dir", args.output_dir]
    return cli_main(cmd)


if __name__ == "__main__":
    sys.exit(main())
