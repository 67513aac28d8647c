"""Ray Job entrypoint for evaluation (candidate vs baseline on held-out patients, optional gate).

    ray job submit --working-dir . -- python jobs/evaluate.py --config jobs/configs/eval.yaml \
        --candidate work/models/ft-abc --policy jobs/configs/gate.yaml
"""

from __future__ import annotations

import argparse
import sys


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", default="jobs/configs/eval.yaml", help="Eval config YAML.")
    parser.add_argument("--candidate", help="Override candidate (artifact dir, registry:<alias|version>, model).")
    parser.add_argument("--baseline", help="Override baseline ('base', 'production' or a model reference).")
    parser.add_argument("--data", help="Override data (curated dataset directory).")
    parser.add_argument("--output-dir", help="Override output_dir.")
    parser.add_argument("--policy", help="Gate policy YAML; the decision goes into the report.")
    args = parser.parse_args(argv)

    from clinitune.cli.main import main as cli_main

    cmd = ["eval", "--config", args.config]
    for flag in ("candidate", "baseline", "data", "output_dir", "policy"):
        value = getattr(args, flag)
        if value:
            cmd += [f"--{flag.replace('_', '-')}", value]
    return cli_main(cmd)


if __name__ == "__main__":
    sys.exit(main())
