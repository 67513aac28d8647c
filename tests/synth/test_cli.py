"""``clinitune synth notes`` through the real CLI app."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from clinitune.cli.main import app

runner = CliRunner()


@pytest.mark.parametrize(
    "args, needle",
    [
        (["--n", "0"], "--n"),
        (["--n", "10", "--dup-rate", "1.5"], "--dup-rate"),
        (["--n", "10", "--malformed-rate", "-0.1"], "--malformed-rate"),
    ],
)
def test_bad_values_exit_2_with_one_line(tmp_path, args, needle):
    result = runner.invoke(app, ["synth", "notes", *args, "--out", str(tmp_path / "o"), "--local"])
    assert result.exit_code == 2, result.output
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error:") and needle in lines[0] and "Fix:" in lines[0]
    assert not (tmp_path / "o").exists()


def test_out_path_that_is_a_file(tmp_path):
    target = tmp_path / "notes.jsonl"
    target.write_text("")
    result = runner.invoke(app, ["synth", "notes", "--n", "5", "--out", str(target), "--local"])
    assert result.exit_code == 2
    assert len(result.output.strip().splitlines()) == 1 and "is a file" in result.output


def test_generates_and_prints_where_the_output_is(tmp_path):
    out = tmp_path / "notes"
    result = runner.invoke(app, ["synth", "notes", "--n", "30", "--out", str(out), "--seed", "3", "--local"])
    assert result.exit_code == 0, result.output
    assert f"output:   {out}" in result.output and f"manifest: {out / '_synth_manifest.json'}" in result.output
    manifest = json.loads((out / "_synth_manifest.json").read_text())
    assert manifest["records"] == 30 and manifest["seed"] == 3
    # never the note text on the console
    first = json.loads((out / "notes-00000.jsonl").read_text().splitlines()[0])
    assert first["text"][:40] not in result.output


@pytest.mark.ray
def test_on_ray(ray_session, tmp_path):
    out = tmp_path / "notes"
    result = runner.invoke(app, ["synth", "notes", "--n", "40", "--out", str(out), "--malformed-rate", "0.1"])
    assert result.exit_code == 0, result.output
    assert json.loads((out / "_synth_manifest.json").read_text())["records"] == 40
