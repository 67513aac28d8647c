"""The floors of ARCHITECTURE.md hold: no module imports from a floor above its own (lazy imports
inside functions count too), and no stage names another stage's files."""

from __future__ import annotations

import ast
import re
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "platform" / "clinitune"

FLOORS = {
    0: ("clinitune", "clinitune.config", "clinitune.errors", "clinitune.ray_utils", "clinitune.named", "clinitune._lazy"),
    1: ("clinitune.artifacts", "clinitune.terminology", "clinitune.schema", "clinitune.models.catalog", "clinitune.models.gguf"),
    2: ("clinitune.models", "clinitune.registry", "clinitune.phi", "clinitune.tracking", "clinitune.constrain"),
    3: ("clinitune.curate", "clinitune.data", "clinitune.train", "clinitune.tune", "clinitune.evaluate", "clinitune.rag",
        "clinitune.synth"),
    4: ("clinitune.pipeline", "clinitune.serve", "clinitune.review"),
    5: ("clinitune.cli",),
}


def floor_of(module: str) -> int:
    """The floor of the longest prefix that names ``module``."""
    best = (-1, -1)
    for floor, prefixes in FLOORS.items():
        for p in prefixes:
            if (module == p or (p != "clinitune" and module.startswith(p + "."))) and len(p) > best[1]:
                best = (floor, len(p))
    assert best[0] >= 0, f"{module} is on no floor: add it to FLOORS and ARCHITECTURE.md"
    return best[0]


def _modules():
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
        yield ".".join(parts[:-1] if parts[-1] == "__init__" else parts), path


def test_no_module_imports_from_a_floor_above_its_own():
    upward = []
    for module, path in _modules():
        mine = floor_of(module)
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("clinitune"):
                targets = [node.module]
            elif isinstance(node, ast.Import):
                targets = [a.name for a in node.names if a.name.startswith("clinitune")]
            else:
                continue
            upward += [f"{module}:{node.lineno} imports {t}" for t in targets if floor_of(t) > mine]
    assert not upward, upward


def test_artifact_file_names_are_spelled_only_in_artifacts():
    """Stages reach each other's outputs through clinitune.artifacts, never by file name."""
    names = re.compile(r"""["'](manifest\.json|clinitune_artifact\.json|dataset_manifest\.json|canaries\.json)["']""")
    found = [f"{m}" for m, path in _modules()
             if not m.startswith("clinitune.artifacts") and names.search(path.read_text(encoding="utf-8"))]
    assert not found, found
