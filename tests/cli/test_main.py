"""The CLI shell: every stage has --help, and user mistakes exit 2 with one line."""

from __future__ import annotations

import subprocess
import sys

from typer.testing import CliRunner

from clinitune.cli.main import app, main


def test_help_lists_stages():
    res = CliRunner().invoke(app, ["--help"])
    assert res.exit_code == 0
    for stage in ("synth", "curate", "phi", "train", "evaluate", "rag"):
        assert stage in res.output


def test_old_spellings_still_run_their_commands():
    """Scripts written for the earlier names keep working; --help lists only the current ones."""
    runner = CliRunner()
    listed = runner.invoke(app, ["--help"]).output
    for old, new in (("eval", "evaluate"), ("kb", "rag"), ("deid", "phi"), ("finetune", "train")):
        assert f" {old} " not in listed
        assert runner.invoke(app, [old, "--help"]).exit_code == 0
        assert runner.invoke(app, [new, "--help"]).exit_code == 0


def test_every_command_has_help():
    import typer.main

    group = typer.main.get_command(app)
    runner = CliRunner()

    def walk(cmd, path):
        res = runner.invoke(app, [*path, "--help"])
        assert res.exit_code == 0, (path, res.output)
        for name, sub in getattr(cmd, "commands", {}).items():
            walk(sub, [*path, name])

    walk(group, [])


def test_user_error_is_one_line_exit_2_under_runner(tmp_path):
    res = CliRunner().invoke(app, ["curate", "--input", str(tmp_path / "missing"), "--output", str(tmp_path / "o")])
    assert res.exit_code == 2
    assert "Traceback" not in res.output
    assert "does not exist" in res.output


def test_main_returns_2_for_unknown_option():
    assert main(["curate", "--no-such-option"]) == 2


def test_module_entry_point(tmp_path):
    out = subprocess.run([sys.executable, "-m", "clinitune.cli.main", "--help"], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0 and "curate" in out.stdout
