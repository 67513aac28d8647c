"""What every job entrypoint does: run one ``clinitune`` command with the job's own arguments.

The command's flags are the CLI's (``clinitune <command> --help`` documents them); a job only adds
its default config file when none is passed.

The package travels with the job: submitted from a checkout (``ray job submit --working-dir .``),
the job finds ``platform/`` in its working directory, and ``clinitune.ray_utils.connect`` ships
the package to every worker of the job (runtime env ``py_modules``). The cluster's nodes need the
dependencies only (the image from cluster/Dockerfile, or a ``pip`` runtime env). A package
installed on the nodes is used as it is.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

MISSING = (
    "error: the clinitune package is not available to this job: the cluster's Python does not have it installed "
    "and the job's working directory '{cwd}' has no platform/clinitune. Fix: ship it with the job (submit from a "
    "Clinitune checkout: `ray job submit --working-dir . -- python jobs/<job>.py ...`), or install it on every "
    "node (the image built from cluster/Dockerfile has it)."
)


def _find_package() -> bool:
    """Make ``clinitune`` importable: installed, else ``platform/`` of the working dir (then shipped)."""
    import importlib.util

    if importlib.util.find_spec("clinitune") is not None:
        return True
    for root in (Path.cwd(), Path(__file__).resolve().parents[1]):
        if (root / "platform" / "clinitune" / "__init__.py").is_file():
            sys.path.insert(0, str(root / "platform"))
            os.environ["CLINITUNE_SHIP_PACKAGE"] = "1"  # read by clinitune.ray_utils.connect
            return True
    return False


def run(command: list[str], default_config: str | None = None, argv: list[str] | None = None) -> int:
    if not _find_package():
        print(MISSING.format(cwd=Path.cwd()), file=sys.stderr)
        return 2
    args = list(sys.argv[1:] if argv is None else argv)
    if default_config and not any(a in ("--config", "-c") or a.startswith("--config=") for a in args):
        args = ["--config", default_config, *args]
    from clinitune.cli.main import main

    return main([*command, *args])
