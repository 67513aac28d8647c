"""What every job entrypoint does: run one ``clinitune`` command with the job's own arguments.

The command's flags are the CLI's (``clinitune <command> --help`` documents them); a job only adds
its default config file when none is passed.
"""

from __future__ import annotations

import sys


def run(command: list[str], default_config: str | None = None, argv: list[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if default_config and not any(a in ("--config", "-c") or a.startswith("--config=") for a in args):
        args = ["--config", default_config, *args]
    from clinitune.cli.main import main

    return main([*command, *args])
