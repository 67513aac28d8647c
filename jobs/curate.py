"""Ray Job entrypoint for curation.

    ray job submit --working-dir . -- python jobs/curate.py --config jobs/configs/curate.yaml \
        --input /data/notes --output /data/curated
"""

from __future__ import annotations

import argparse
import sys


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", default="jobs/configs/curate.yaml", help="Curation config YAML.")
    parser.add_argument("--input", action="append", required=True, help="Input file or directory (repeatable).")
    parser.add_argument("--output", required=True, help="Output directory.")
    parser.add_argument("--force", action="store_true", help="Re-run even if inputs and config are unchanged.")
    args = parser.parse_args(argv)

    from clinitune.cli.main import main as cli_main

    cmd = ["curate", "--config", args.config, "--output", args.output]
    for path in args.input:
        cmd += ["--input", path]
    if args.force:
        cmd.append("--force")
    return cli_main(cmd)


if __name__ == "__main__":
    sys.exit(main())
