"""Ray Job entrypoint for one tick of the continuous loop (cron or a KubeRay RayJob runs it).

    ray job submit --working-dir . -- python jobs/pipeline.py --config jobs/configs/pipeline.yaml

Idempotent: with nothing new in the inbox it does nothing; after a crash it resumes the
unfinished run at its first unfinished stage.
"""

from __future__ import annotations

import argparse
import sys


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", default="jobs/configs/pipeline.yaml", help="Pipeline config YAML.")
    args = parser.parse_args(argv)

    from clinitune.cli.main import main as cli_main

    return cli_main(["pipeline", "run", "--config", args.config])


if __name__ == "__main__":
    sys.exit(main())
