"""Running a list of steps over Ray Data batches with a stable Arrow schema."""

from __future__ import annotations

from typing import Any

import pandas as pd
import pyarrow as pa

from clinitune.curate.steps.base import Step, build_step
from clinitune.schema import RECORD_SCHEMA

# Columns that may be all-null in a batch but are strings: typing them stops a block whose
# values happen to be all null from getting Arrow's null type and breaking concatenation.
STRING_COLUMNS = {f.name for f in RECORD_SCHEMA} | {"dup_of", "split", "phi_counts", "boilerplate_removed", "_node"}


def to_arrow(df: pd.DataFrame) -> pa.Table:
    """Convert a step's pandas output to Arrow, typing known string columns explicitly."""
    arrays, fields = [], []
    for name in df.columns:
        col = df[name]
        if name in STRING_COLUMNS:
            arr = pa.array(col.astype(object).where(col.notna(), None).tolist(), type=pa.string())
        else:
            arr = pa.Array.from_pandas(col)
        arrays.append(arr)
        fields.append(pa.field(name, arr.type))
    return pa.Table.from_arrays(arrays, schema=pa.schema(fields))


def check_chain(specs: list[tuple[str, dict[str, Any]]], available: set[str]) -> list[Step]:
    """Build the steps and check each one's required columns exist before data moves."""
    from clinitune.errors import ConfigError

    steps, columns = [], set(available)
    for name, options in specs:
        step = build_step(name, options)
        missing = [c for c in step.requires if c not in columns]
        if missing:
            raise ConfigError(
                f"curation step '{name}' needs column(s) {missing} that no earlier step adds. "
                "Fix: reorder the steps or add the step that produces them."
            )
        columns.update(step.adds)
        steps.append(step)
    return steps


class StepChain:
    """A Ray Data callable class: builds its steps once per actor, applies them in order."""

    def __init__(self, specs: list[tuple[str, dict[str, Any]]]):
        self.steps = [build_step(name, options) for name, options in specs]

    def __call__(self, batch: pd.DataFrame) -> pa.Table:
        for step in self.steps:
            batch = step(batch)
        return to_arrow(batch)


def apply_chain(batch: pd.DataFrame, specs: list[tuple[str, dict[str, Any]]]) -> pa.Table:
    """Task form of :class:`StepChain` for steps that are cheap to build (no model to load)."""
    return StepChain(specs)(batch)
