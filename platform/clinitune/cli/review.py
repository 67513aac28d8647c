"""``clinitune review serve|create|list|close|export|users``: clinician review of a candidate's answers."""

from __future__ import annotations

import getpass
import sys
from pathlib import Path
from typing import Optional

import typer

review_app = typer.Typer(help="Clinician review: campaigns of blinded A/B grading from an evaluation run, a web app to grade "
                              "them, sign-off for the promotion gate.", no_args_is_help=True)
users_app = typer.Typer(help="Reviewer and admin accounts.", no_args_is_help=True)
review_app.add_typer(users_app, name="users")

_CONFIG = typer.Option(None, "--config", "-c", help="Review config YAML (see jobs/configs/review.yaml).")
_DB = typer.Option(None, "--db", help="Review database URL (overrides database_url; default sqlite:///<workdir>/review.db).")
_WORKDIR = typer.Option(None, "--workdir", help="Working directory (overrides workdir).")


def _cfg(config: Optional[Path], db: Optional[str], workdir: Optional[str]):
    from clinitune.config import load_config
    from clinitune.review.config import ReviewConfig

    return load_config(config, ReviewConfig, {"database_url": db, "workdir": workdir})


def _database(cfg):
    from clinitune.review.db import Database

    return Database(cfg.resolved_database_url())


def _actor() -> str:
    try:
        return f"cli:{getpass.getuser()}"[:64]
    except Exception:  # noqa: BLE001 - no login name in some containers
        return "cli"


@review_app.command("serve")
def serve_cmd(config: Optional[Path] = _CONFIG, db: Optional[str] = _DB, workdir: Optional[str] = _WORKDIR,
              host: Optional[str] = typer.Option(None, "--host", help="Interface to bind (overrides server.host)."),
              port: Optional[int] = typer.Option(None, "--port", help="Port (overrides server.port).")) -> None:
    """Run the review web application (the database is migrated to the latest schema first)."""
    import uvicorn

    from clinitune.review.app import create_app

    cfg = _cfg(config, db, workdir)
    if host:
        cfg.server.host = host
    if port:
        cfg.server.port = port
    app = create_app(cfg)
    typer.echo(f"review app on http://{cfg.server.host}:{cfg.server.port} (database {app.state.database.engine.url.render_as_string(hide_password=True)})")
    proxy = cfg.server.forwarded_allow_ips
    uvicorn.run(app, host=cfg.server.host, port=cfg.server.port, log_level="info", access_log=True,
                proxy_headers=bool(proxy), forwarded_allow_ips=proxy or "")


@review_app.command("create")
def create_cmd(
    eval_ref: str = typer.Option(..., "--eval", help="Evaluation run: its output directory (or report.json), or registry:<version|alias>."),
    items: Optional[int] = typer.Option(None, "--items", min=1, help="Items to sample (default: the config's items)."),
    seed: Optional[int] = typer.Option(None, "--seed", help="Seed of the sample and of the A/B order (default: the config's seed)."),
    name: Optional[str] = typer.Option(None, "--name", help="Campaign name (default: '<candidate> vs <baseline>')."),
    candidate_arm: str = typer.Option("candidate", "--candidate-arm", help="Stored answers graded as the candidate (candidate, candidate_rag, ...)."),
    baseline_arm: str = typer.Option("baseline", "--baseline-arm", help="Stored answers graded as the baseline."),
    config: Optional[Path] = _CONFIG, db: Optional[str] = _DB, workdir: Optional[str] = _WORKDIR,
) -> None:
    """Create a campaign: a sample of the evaluation's held-out items, stratified by its fairness slices, blinded A/B."""
    from clinitune.review.campaigns import create_campaign
    from clinitune.review.source import resolve_eval

    cfg = _cfg(config, db, workdir)
    source = resolve_eval(eval_ref, registry_uri=cfg.registry.tracking_uri, model_name=cfg.registry.model_name, workdir=cfg.workdir)
    database = _database(cfg)
    with database.session() as s:
        camp = create_campaign(s, source, n=items or cfg.items, seed=cfg.seed if seed is None else seed, name=name,
                               created_by=_actor(), candidate_arm=candidate_arm, baseline_arm=baseline_arm)
        cid, n, cname = camp.id, len(camp.items), camp.name
    typer.echo(f"campaign {cid} '{cname}': {n} items of {len(source.records)} (stratified by "
               f"{', '.join((source.report.get('answers') or {}).get('slice_keys') or []) or 'nothing'}; seed "
               f"{cfg.seed if seed is None else seed})")
    if not source.mlflow_targets:
        typer.echo("note: no MLflow run found for the candidate; closing will write the summary into the report only", err=True)


@review_app.command("list")
def list_cmd(config: Optional[Path] = _CONFIG, db: Optional[str] = _DB, workdir: Optional[str] = _WORKDIR) -> None:
    """Campaigns with their status and progress."""
    from rich.console import Console
    from rich.table import Table

    from clinitune.review.campaigns import campaigns_overview, progress

    database = _database(_cfg(config, db, workdir))
    with database.session() as s:
        rows = [(c, progress(s, c)) for c in campaigns_overview(s)]
        if not rows:
            typer.echo("no campaigns")
            return
        table = Table(title="review campaigns")
        for col in ("id", "name", "status", "graded", "reviewers", "created", "report"):
            table.add_column(col)
        for c, p in rows:
            table.add_row(str(c.id), c.name, c.status, f"{p.graded}/{p.total}", str(p.reviewers),
                          c.created_at.strftime("%Y-%m-%d %H:%M"), c.report_path)
        Console().print(table)


@review_app.command("close")
def close_cmd(campaign: int = typer.Argument(..., help="Campaign id."), config: Optional[Path] = _CONFIG,
              db: Optional[str] = _DB, workdir: Optional[str] = _WORKDIR) -> None:
    """Close a campaign: its summary goes into the evaluation report and the candidate's MLflow run (again, if already closed)."""
    from clinitune.review.campaigns import get_campaign
    from clinitune.review.models import CLOSED
    from clinitune.review.publish import close_and_publish

    database = _database(_cfg(config, db, workdir))
    with database.session() as s:
        was_closed = get_campaign(s, campaign).status == CLOSED
    summary, done = close_and_publish(database, campaign, by=_actor())
    wr = summary["win_rate"]
    rate = "n/a" if wr["rate"] is None else f"{wr['rate']:.3f} (95% CI {wr['ci_low']:.3f}-{wr['ci_high']:.3f})"
    typer.echo(f"campaign {campaign} {'was already closed; summary published again' if was_closed else 'closed'}: "
               f"{summary['graded_items']}/{summary['items']} items graded by {summary['reviewers']} reviewer(s); win rate {rate}")
    flags = {k: v for k, v in summary["unsafe"]["candidate"].items() if v}
    typer.echo(f"unsafe flags on the candidate: {', '.join(f'{k} x{v}' for k, v in flags.items()) if flags else 'none'}")
    typer.echo(f"report: {done['report'] or 'not written (' + done.get('report_error', '?') + ')'}")
    for t in done["mlflow"]:
        typer.echo(f"mlflow {t['what']} {t['run_id']}: {'written' if t['ok'] else 'failed (' + t['error'] + ')'}")


@review_app.command("export")
def export_cmd(campaign: int = typer.Argument(..., help="Campaign id."),
               fmt: str = typer.Option("csv", "--format", "-f", help="csv or json."),
               output: Optional[Path] = typer.Option(None, "--output", "-o", help="File to write (default: standard output)."),
               config: Optional[Path] = _CONFIG, db: Optional[str] = _DB, workdir: Optional[str] = _WORKDIR) -> None:
    """Every grade of a campaign (superseded ones marked), as CSV or JSON, for governance records."""
    from clinitune.errors import UserError
    from clinitune.review.accounts import audit
    from clinitune.review.campaigns import get_campaign
    from clinitune.review.export import export_grades

    if fmt not in ("csv", "json"):
        raise UserError(f"--format '{fmt}' is not supported.", fix="use csv or json.")
    database = _database(_cfg(config, db, workdir))
    with database.session() as s:
        body = export_grades(s, get_campaign(s, campaign), fmt)
        audit(s, _actor(), "campaign_exported", campaign_id=campaign, format=fmt)
    if output is None:
        sys.stdout.write(body)
        return
    if output.is_dir():
        raise UserError(f"--output '{output}' is a directory.", fix="pass a file path.")
    from clinitune.artifacts.publish import write_whole

    write_whole(output, body)
    typer.echo(f"wrote {output}", err=True)


# --- accounts ------------------------------------------------------------------------------------


def _password(stdin: bool) -> str:
    if stdin:
        return sys.stdin.readline().rstrip("\n")
    return typer.prompt("password", hide_input=True, confirmation_prompt=True)


@users_app.command("add")
def users_add(username: str = typer.Argument(..., help="User name (letters, digits, . _ - @)."),
              role: str = typer.Option("reviewer", "--role", help="reviewer or admin."),
              password_stdin: bool = typer.Option(False, "--password-stdin", help="Read the password from standard input (else a hidden prompt)."),
              config: Optional[Path] = _CONFIG, db: Optional[str] = _DB, workdir: Optional[str] = _WORKDIR) -> None:
    """Add an account (the first admin is added this way)."""
    from clinitune.review.accounts import add_user

    cfg = _cfg(config, db, workdir)
    password = _password(password_stdin)
    with _database(cfg).session() as s:
        u = add_user(s, username, password, role, min_length=cfg.sign_in.min_password_length, actor=_actor())
        typer.echo(f"added {u.role} '{u.username}'")


@users_app.command("list")
def users_list(config: Optional[Path] = _CONFIG, db: Optional[str] = _DB, workdir: Optional[str] = _WORKDIR) -> None:
    """Accounts with role and status."""
    from sqlalchemy import select

    from clinitune.review.models import User

    with _database(_cfg(config, db, workdir)).session() as s:
        for u in s.scalars(select(User).order_by(User.username)):
            typer.echo(f"{u.username}\t{u.role}\t{'active' if u.active else 'deactivated'}\t{u.created_at:%Y-%m-%d}")


@users_app.command("passwd")
def users_passwd(username: str = typer.Argument(..., help="User name."),
                 password_stdin: bool = typer.Option(False, "--password-stdin", help="Read the password from standard input."),
                 config: Optional[Path] = _CONFIG, db: Optional[str] = _DB, workdir: Optional[str] = _WORKDIR) -> None:
    """Set a new password (ends the user's sessions)."""
    from clinitune.review.accounts import get_user, set_password

    cfg = _cfg(config, db, workdir)
    password = _password(password_stdin)
    with _database(cfg).session() as s:
        set_password(s, get_user(s, username), password, min_length=cfg.sign_in.min_password_length, actor=_actor())
    typer.echo(f"password of '{username}' changed")


@users_app.command("deactivate")
def users_deactivate(username: str = typer.Argument(..., help="User name."), config: Optional[Path] = _CONFIG,
                     db: Optional[str] = _DB, workdir: Optional[str] = _WORKDIR) -> None:
    """Deactivate an account (its sessions end; its grades stay)."""
    from clinitune.review.accounts import get_user, set_active

    with _database(_cfg(config, db, workdir)).session() as s:
        set_active(s, get_user(s, username), False, actor=_actor())
    typer.echo(f"deactivated '{username}'")


@users_app.command("activate")
def users_activate(username: str = typer.Argument(..., help="User name."), config: Optional[Path] = _CONFIG,
                   db: Optional[str] = _DB, workdir: Optional[str] = _WORKDIR) -> None:
    """Reactivate an account."""
    from clinitune.review.accounts import get_user, set_active

    with _database(_cfg(config, db, workdir)).session() as s:
        set_active(s, get_user(s, username), True, actor=_actor())
    typer.echo(f"activated '{username}'")


def register(app: typer.Typer) -> None:
    app.add_typer(review_app, name="review")
