"""What every job entrypoint does: run one ``clinitune`` command with the job's own arguments.

The command's flags are the CLI's own parser's (``clinitune <command> --help`` documents them, and
``python jobs/<job>.py --help`` prints the same); a job only adds its default config file, from
``configs/`` beside it, when none is passed.

The package travels with the job: submitted from a checkout (``ray job submit --working-dir .``),
the job runs the ``platform/clinitune`` of its own checkout, and ``clinitune.ray_utils.connect``
ships that package to every worker of the job (runtime env ``py_modules``), whatever version the
nodes have installed, or none. The cluster's nodes need the dependencies only (the image from
cluster/Dockerfile, or installed on the nodes). Without a checkout beside it (a job file copied
alone), the job uses the package installed on the nodes.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

MISSING = (
    "error: the clinitune package is not available to this job: the cluster's Python does not have it installed "
    "and the job's checkout '{checkout}' has no platform/clinitune. Fix: ship it with the job (submit from a "
    "Clinitune checkout: `ray job submit --working-dir . -- python jobs/<job>.py ...`), or install it on every "
    "node (the image built from cluster/Dockerfile has it)."
)
SHIP_PACKAGE_ENV = "CLINITUNE_SHIP_PACKAGE"  # read by clinitune.ray_utils.connect


def _checkout() -> Path:
    """The checkout this job file belongs to (jobs/ is in it)."""
    return Path(__file__).resolve().parents[1]


def _find_package() -> bool:
    """Make this checkout's ``clinitune`` the one imported (and shipped), else use the installed one."""
    import importlib.util

    platform = _checkout() / "platform"
    if (platform / "clinitune" / "__init__.py").is_file():
        spec = importlib.util.find_spec("clinitune")
        installed = Path(spec.origin).resolve().parent if spec is not None and spec.origin else None
        if installed != (platform / "clinitune").resolve():  # not the installed package itself (the image's)
            sys.path.insert(0, str(platform))
            os.environ[SHIP_PACKAGE_ENV] = "1"
        return True
    return importlib.util.find_spec("clinitune") is not None


def run(command: list[str], default_config: str | None = None, argv: list[str] | None = None) -> int:
    """``clinitune <command> [--config configs/<default_config>] <argv>``; its exit code."""
    if not _find_package():
        print(MISSING.format(checkout=_checkout()), file=sys.stderr)
        return 2
    args = list(sys.argv[1:] if argv is None else argv)
    if default_config and not any(a in ("--config", "-c") or a.startswith("--config=") for a in args):
        args = ["--config", str(Path(__file__).resolve().parent / "configs" / default_config), *args]
    from clinitune.cli.main import main

    return main([*command, *args])
