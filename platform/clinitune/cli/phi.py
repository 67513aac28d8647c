"""``clinitune phi``: detect or redact PHI in a JSONL file of notes; train the PHI tagger.

Input lines are JSON objects with ``note_id`` and ``text`` (``patient_id`` is used when present;
other fields are ignored and never copied to the output). A malformed line stops the run with an
error naming its line number, unless ``--skip-bad`` is given: then it is counted as a reject (line
number and reason, never text, in ``--rejects``). Notes go to the engine in batches (the learned
tagger runs batched). Every output file is published whole (``clinitune.artifacts.publish``): a
failed run leaves the previous file, never half a new one. ``clinitune phi train --config``
reproduces the tagger shipped in the package.
"""

from __future__ import annotations

import functools
import json
import sys
from collections import Counter
from contextlib import ExitStack
from pathlib import Path
from typing import Iterator, Optional

import typer

from clinitune.artifacts.publish import publish_whole, write_whole
from clinitune.errors import InputPathError, UserError

deid_app = typer.Typer(
    name="deid",
    help="Detect and redact PHI (the 18 HIPAA Safe Harbor identifier kinds) in clinical notes.",
    no_args_is_help=True,
)


class _BadRecord(Exception):
    def __init__(self, line_no: int, reason: str, note_id: str | None = None):
        self.line_no, self.reason, self.note_id = line_no, reason, note_id
        super().__init__(reason)


def _user_errors(fn):
    """Show a UserError as one line and exit 2, also when the sub-app is invoked directly."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except UserError as err:
            typer.echo(f"error: {err}", err=True)
            raise typer.Exit(UserError.exit_code) from None

    return wrapper


def _records(path: Path) -> Iterator[tuple[int, dict | _BadRecord]]:
    with path.open("rb") as fh:
        for line_no, raw in enumerate(fh, start=1):
            if not raw.strip():
                continue
            try:
                line = raw.decode("utf-8")
            except UnicodeDecodeError:
                yield line_no, _BadRecord(line_no, "is not valid UTF-8 (mixed encodings?)")
                continue
            try:
                obj = json.loads(line)
            except json.JSONDecodeError as err:
                yield line_no, _BadRecord(line_no, f"is not valid JSON ({err.msg} at column {err.colno})")
                continue
            if not isinstance(obj, dict):
                yield line_no, _BadRecord(line_no, f"is a JSON {type(obj).__name__}, expected an object")
                continue
            note_id = obj.get("note_id")
            if note_id is None or (isinstance(note_id, str) and not note_id.strip()):
                yield line_no, _BadRecord(line_no, "has no 'note_id'")
                continue
            if not isinstance(note_id, (str, int)) or isinstance(note_id, bool):
                yield line_no, _BadRecord(line_no, f"has a 'note_id' of type {type(note_id).__name__}, expected a string")
                continue
            text = obj.get("text")
            if text is None:
                text = ""
            if not isinstance(text, str):
                yield line_no, _BadRecord(line_no, f"has a 'text' of type {type(text).__name__}, expected a string", str(note_id))
                continue
            pid = obj.get("patient_id")
            yield line_no, {"note_id": str(note_id), "text": text, "patient_id": None if pid is None else str(pid)}


def _check_output(path: Path) -> None:
    if path.exists() and path.is_dir():
        raise InputPathError(f"output path '{path}' is a directory. Fix: pass a file path for --output.")
    parent = path.parent if str(path.parent) else Path(".")
    if not parent.exists():
        raise InputPathError(f"output directory '{parent}' does not exist. Fix: create it or choose another --output.")


def _check_input(path: Path) -> Path:
    if not path.exists():
        raise InputPathError(f"input path '{path}' does not exist. Fix: pass an existing JSONL file with --input.")
    if not path.is_file():
        raise InputPathError(f"input path '{path}' is not a file. Fix: pass a JSONL file with --input.")
    return path


BATCH = 64  # notes per engine call


def _run(input: Path, output: Path, skip_bad: bool, rejects: Optional[Path], handle_many) -> tuple[int, list[dict]]:
    """Feed good records in batches to ``handle_many(records) -> [dict | PhiProcessingError]`` and
    write the results in input order; returns (written, rejects)."""
    from clinitune.phi import PhiProcessingError

    _check_input(input)
    _check_output(output)
    bad: list[dict] = []
    written = 0

    def flush(pending: list[tuple[int, dict]], out) -> None:
        nonlocal written
        for (line_no, rec), result in zip(pending, handle_many([r for _, r in pending])):
            if isinstance(result, PhiProcessingError):
                if not skip_bad:
                    raise UserError(f"{input} line {line_no}: {result}.", fix="fix or remove that note, or pass --skip-bad to count it as a reject and go on.")
                bad.append({"line": line_no, "note_id": rec["note_id"], "reason": result.reason})
                continue
            out.write(json.dumps(result, ensure_ascii=True) + "\n")
            written += 1
        pending.clear()

    with publish_whole(output, file=True) as tmp, tmp.open("w", encoding="utf-8") as out:
        pending: list[tuple[int, dict]] = []
        for line_no, rec in _records(input):
            if isinstance(rec, _BadRecord):
                flush(pending, out)  # keep the output in input order
                if not skip_bad:
                    raise UserError(f"{input} line {line_no} {rec.reason}.", fix="correct that line, or pass --skip-bad to count it as a reject and go on.")
                bad.append({"line": line_no, "note_id": rec.note_id, "reason": rec.reason})
                continue
            pending.append((line_no, rec))
            if len(pending) >= BATCH:
                flush(pending, out)
        flush(pending, out)
    if rejects is not None:
        write_whole(rejects, "".join(json.dumps(r) + "\n" for r in bad))
    return written, bad


def _engine(min_score: float, types: Optional[str], detector: Optional[str] = None, model_dir: Optional[Path] = None):
    from clinitune.config import validate_config
    from clinitune.phi import PhiConfig, PhiEngine

    opts: dict = {"min_score": min_score}
    if types:
        opts["types"] = [t.strip().upper() for t in types.split(",") if t.strip()]
    if detector:
        opts["detector"] = detector
    if model_dir is not None:
        opts["model_dir"] = str(model_dir)
    return PhiEngine(validate_config(opts, PhiConfig, source="deid options")).warm_up()


def _summary(written: int, bad: list[dict], totals: Counter, output: Path) -> None:
    kinds = ", ".join(f"{k} {v:,}" for k, v in sorted(totals.items())) or "none"
    typer.echo(f"{written:,} notes written to {output}; {len(bad):,} rejected; PHI found: {kinds}", err=True)


_INPUT = typer.Option(..., "--input", "-i", help="JSONL notes: one object a line with 'note_id' and 'text' ('patient_id' used when present).")
_SKIP = typer.Option(False, "--skip-bad", help="Count malformed lines and unprocessable notes as rejects instead of stopping.")
_REJECTS = typer.Option(None, "--rejects", help="Write rejects (line number, note id, reason; never text) to this JSONL file.")
_MIN_SCORE = typer.Option(0.0, "--min-score", help="Drop spans scoring below this (0 keeps all: recall first).")
_TYPES = typer.Option(None, "--types", help="Comma-separated PHI kinds to report (default: all 18 Safe Harbor kinds).")
_DETECTOR = typer.Option(None, "--detector", help="'ensemble' (learned tagger + rules, recall first) or 'rules' (faster); default: the engine's.")
_MODEL_DIR = typer.Option(None, "--model-dir", help="A trained PHI tagger directory (default: the one shipped in the package).")


@deid_app.command("detect")
@_user_errors
def detect(
    input: Path = _INPUT,
    output: Path = typer.Option(..., "--output", "-o", help="JSONL predictions: {note_id, spans: [{start, end, type, score}]}."),
    skip_bad: bool = _SKIP,
    rejects: Optional[Path] = _REJECTS,
    min_score: float = _MIN_SCORE,
    types: Optional[str] = _TYPES,
    detector: Optional[str] = _DETECTOR,
    model_dir: Optional[Path] = _MODEL_DIR,
) -> None:
    """Find PHI spans (character offsets into the input text, end exclusive) in every note."""
    engine = _engine(min_score, types, detector, model_dir)
    totals: Counter = Counter()

    def handle_many(recs: list[dict]) -> list:
        out = []
        for rec, spans in zip(recs, engine.detect_many([r["text"] for r in recs], [r["note_id"] for r in recs])):
            if isinstance(spans, list):
                totals.update(s.type for s in spans)
                spans = {"note_id": rec["note_id"], "spans": [s.to_dict() for s in spans]}
            out.append(spans)
        return out

    written, bad = _run(input, output, skip_bad, rejects, handle_many)
    _summary(written, bad, totals, output)


@deid_app.command("redact")
@_user_errors
def redact(
    input: Path = _INPUT,
    output: Path = typer.Option(..., "--output", "-o", help="JSONL redacted notes: {note_id, patient_id, text, phi_counts}."),
    mode: str = typer.Option("tag", "--mode", "-m", help="tag ([NAME]), mask (****) or surrogate (consistent per patient; key from $CLINITUNE_DEID_KEY)."),
    audit: Optional[Path] = typer.Option(None, "--audit", help="Write a per-note audit (note id, counts per PHI kind; never values) to this JSONL file."),
    key_env: str = typer.Option("CLINITUNE_DEID_KEY", "--key-env", help="Environment variable holding the surrogate key."),
    skip_bad: bool = _SKIP,
    rejects: Optional[Path] = _REJECTS,
    min_score: float = _MIN_SCORE,
    types: Optional[str] = _TYPES,
    detector: Optional[str] = _DETECTOR,
    model_dir: Optional[Path] = _MODEL_DIR,
) -> None:
    """Replace PHI in every note: tags, masks or realistic per-patient surrogates."""
    if mode not in ("tag", "mask", "surrogate"):
        raise UserError(f"--mode '{mode}' is not supported.", fix="use one of: tag, mask, surrogate.")
    engine = _engine(min_score, types, detector, model_dir)
    engine.config.secret_key_env = key_env
    if mode == "surrogate":
        engine.config.resolve_key()
    totals: Counter = Counter()
    audit_fh = None

    def handle_many(recs: list[dict]) -> list:
        out = []
        reds = engine.redact_many([r["text"] for r in recs], mode=mode, patient_ids=[r["patient_id"] for r in recs],  # type: ignore[arg-type]
                                  note_ids=[r["note_id"] for r in recs])
        for rec, red in zip(recs, reds):
            if hasattr(red, "counts"):
                totals.update(red.counts)
                if audit_fh is not None:
                    audit_fh.write(json.dumps(red.audit()) + "\n")
                red = {"note_id": rec["note_id"], "patient_id": rec["patient_id"], "text": red.text, "phi_counts": red.counts}
            out.append(red)
        return out

    with ExitStack() as stack:
        if audit is not None:
            audit_fh = stack.enter_context(stack.enter_context(publish_whole(audit, file=True)).open("w", encoding="utf-8"))
        written, bad = _run(input, output, skip_bad, rejects, handle_many)
    _summary(written, bad, totals, output)


@deid_app.command("train")
@_user_errors
def train(
    config: Path = typer.Option(..., "--config", "-c", help="Tagger training config (YAML), e.g. jobs/configs/phi_train.yaml."),
    output: Optional[Path] = typer.Option(None, "--output", "-o", help="Publish the tagger here instead of the config's output (default: the package's weights)."),
) -> None:
    """Train the learned PHI tagger from a config (seeded: the same config reproduces the weights)."""
    from clinitune.config import load_config
    from clinitune.phi.training.train import PhiTrainConfig, train_tagger
    from clinitune.synth.gold import gold_notes

    cfg = load_config(config, PhiTrainConfig)
    path = train_tagger(cfg, synthetic=gold_notes, output=output, report=lambda msg: typer.echo(msg, err=True))
    typer.echo(f"PHI tagger published to {path}", err=True)


def register(app: typer.Typer) -> None:
    app.add_typer(deid_app, name="phi")
    app.add_typer(deid_app, name="deid", hidden=True, help="Old spelling of `clinitune phi`.")


if __name__ == "__main__":  # pragma: no cover
    sys.exit(deid_app())
