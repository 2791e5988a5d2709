"""``lora-emotion serve``: run the KPN Things webhook under uvicorn."""

from __future__ import annotations

import argparse
import importlib
from pathlib import Path

EPILOG = """\
configuration (environment, or a TOML file named by --config / LORA_EMOTION_CONFIG):
  LORA_EMOTION_DESTINATIONS   JSON: {"<Things-Plug-UUID>": ["<secret>", "<next secret>"]}
  LORA_EMOTION_READ_TOKENS    bearer tokens of the read API, comma-separated
  LORA_EMOTION_DATABASE_URL   sqlite:///path.sqlite3 (default: ./lora-emotion.sqlite3)
                              or postgresql://user@host/db
  LORA_EMOTION_LABELS_FILE    JSON file of user label sets
  see docs/webhook.md for every setting

examples:
  lora-emotion serve
  lora-emotion serve --config /etc/lora-emotion/webhook.toml --workers 2
  LORA_EMOTION_DATABASE_URL=postgresql://lora@127.0.0.1/lora lora-emotion serve --port 8080
  lora-emotion serve --check     # validate the configuration and migrate, then exit
"""


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the ``serve`` subcommand."""
    parser = subparsers.add_parser(
        "serve",
        help="run the KPN Things webhook service",
        description="Receive KPN Things deliveries, verify, decode and store them durably, "
        "and serve the read API. Listens on loopback by default: put a TLS reverse proxy "
        "in front (docs/deployment.md).",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (default %(default)s)")
    parser.add_argument("--port", type=int, default=8000, help="port (default %(default)s)")
    parser.add_argument(
        "--workers", type=int, default=1, help="worker processes (default %(default)s)"
    )
    parser.add_argument("--config", type=Path, help="TOML configuration file")
    parser.add_argument("--database-url", help="overrides LORA_EMOTION_DATABASE_URL")
    parser.add_argument(
        "--access-log",
        action="store_true",
        help="log every request (costs about a third of the request rate)",
    )
    parser.add_argument(
        "--loop",
        default="lora_emotion.webhook.eventloop:new_event_loop",
        help="uvicorn's event loop: auto, asyncio, uvloop or module:factory (default: uvloop "
        "or asyncio, writing each response in one piece; see docs/webhook.md)",
    )
    parser.add_argument(
        "--ingest-first",
        action="store_true",
        help="answer KPN deliveries ahead of the application's middleware: faster, but "
        "middleware and FastAPI's telemetry do not see them (docs/bench-webhook.md)",
    )
    parser.add_argument(
        "--check", action="store_true", help="validate the configuration, migrate the store, exit"
    )
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    """Hand the parsed options to the webhook package (imported only now: it needs the extra;
    the command line reports a missing one)."""
    server = importlib.import_module("lora_emotion.webhook.server")
    code: int = server.serve(
        host=args.host,
        port=args.port,
        workers=args.workers,
        config=args.config,
        database_url=args.database_url,
        access_log=args.access_log,
        check=args.check,
        loop=args.loop,
        ingest_first=args.ingest_first,
    )
    return code
