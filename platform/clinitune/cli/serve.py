"""``clinitune serve --config serving/local.yaml``: run the OpenAI-compatible server; ``serve new-key``."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

serve_app = typer.Typer(help="Serve the model on Ray Serve (OpenAI-compatible API, LoRA adapters, RAG, PHI guard).",
                        invoke_without_command=True)


@serve_app.callback()
def serve_cmd(
    ctx: typer.Context,
    config: Optional[Path] = typer.Option(None, "--config", "-c", help="Serving config (a Serve config file, e.g. serving/local.yaml)."),
    host: Optional[str] = typer.Option(None, "--host", help="Override http_options.host."),
    port: Optional[int] = typer.Option(None, "--port", help="Override http_options.port."),
    ray_address: Optional[str] = typer.Option(None, "--ray-address", help="Ray cluster to join (host:port, ray://host:10001) or 'local' for a fresh local Ray (default: $RAY_ADDRESS, else the cluster `ray start --head` started on this machine, else a local Ray)."),
) -> None:
    """Start Ray and Serve, deploy the application from --config, and serve until interrupted."""
    if ctx.invoked_subcommand is not None:
        return
    from clinitune.errors import UserError

    if config is None:
        raise UserError("no serving config given.", fix="pass --config serving/local.yaml (or see 'clinitune serve --help').")
    from clinitune.serve.app import load_serve_config, run

    cfg = load_serve_config(config)
    if host or port:
        cfg = cfg.model_copy(update={"http_options": cfg.http_options.model_copy(
            update={k: v for k, v in {"host": host, "port": port}.items() if v})})
    url = run(cfg, ray_address=ray_address, blocking=False)
    typer.echo(f"serving at {url}/v1 (health {url}/health, readiness {url}/ready, metrics {url}/metrics); Ctrl-C stops")
    import time

    from ray import serve

    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        typer.echo("stopping")
        serve.shutdown()


@serve_app.command("new-key")
def new_key_cmd(
    key_id: str = typer.Option(..., "--id", help="Key id (shown in the audit log and metrics)."),
    models: str = typer.Option("*", "--models", help="Comma-separated model ids (patterns) the key may use."),
    rpm: int = typer.Option(60, "--rpm", help="Requests per minute per gateway replica."),
) -> None:
    """Make an API key: prints the key once, and the entry (with its hash only) for auth.keys / $CLINITUNE_API_KEYS."""
    import json

    from clinitune.serve.auth import hash_key, new_key

    key = new_key()
    entry = {"id": key_id, "sha256": hash_key(key), "models": [m.strip() for m in models.split(",") if m.strip()],
             "requests_per_minute": rpm}
    typer.echo(f"key (give it to the client; it is not stored anywhere): {key}")
    typer.echo(f"config entry: {json.dumps(entry)}")


def register(app: typer.Typer) -> None:
    app.add_typer(serve_app, name="serve")
