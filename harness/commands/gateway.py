"""``aigw gateway serve``: run the reference gateway as an HTTP server.

    aigw gateway serve --upstream URL --tenants DIR --budget-store atomic|kv [--host H] [--port P]
                       [--env KEY=VALUE ...] [--account-id ID] [--metrics-jsonl FILE]

Credentials come from the environment, never from flags (flags end up in shell history and process
lists): ``AIGW_API_TOKEN`` (Cloudflare API token), ``AIGW_GATEWAY_TOKEN`` (authenticated gateways) and
optionally ``AIGW_ACCOUNT_ID``.
"""

from __future__ import annotations

import argparse
import asyncio
import os
from collections.abc import Callable
from pathlib import Path

from aigw_harness.errors import ConfigError

__all__ = ["register"]


def _env_pair(text: str) -> tuple[str, str]:
    key, sep, value = text.partition("=")
    if not sep or not key:
        raise argparse.ArgumentTypeError(f"expected KEY=VALUE, got {text!r}")
    return key, value


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser("gateway", help="the reference /chat gateway")
    actions = parser.add_subparsers(title="commands", metavar="COMMAND", required=True)
    serve = actions.add_parser(
        "serve",
        help="serve /chat, /health and session history in front of an AI Gateway (or the fake)",
        description="Serve the platform's /chat contract in front of AI Gateway's Workers AI endpoint. "
        "Credentials are read from AIGW_API_TOKEN, AIGW_GATEWAY_TOKEN and AIGW_ACCOUNT_ID.",
    )
    serve.add_argument(
        "--upstream", required=True, metavar="URL", help="gateway base URL (the fake's or Cloudflare's)"
    )
    serve.add_argument(
        "--tenants", required=True, type=Path, metavar="DIR", help="directory of tenant JSON files"
    )
    serve.add_argument("--budget-store", choices=("atomic", "kv"), default="atomic", help="default: atomic")
    serve.add_argument("--host", default="127.0.0.1", help="default: 127.0.0.1")
    serve.add_argument(
        "--port", type=int, default=8788, help="port to listen on (default: 8788; 0 picks a free one)"
    )
    serve.add_argument(
        "--env",
        action="append",
        type=_env_pair,
        default=[],
        metavar="KEY=VALUE",
        help="environment override (MODEL_ID, FALLBACK_MODEL_ID, MAX_MESSAGE_LENGTH, MAX_MESSAGE_COUNT, "
        "MAX_REQUEST_BODY_SIZE, ENVIRONMENT); repeatable",
    )
    serve.add_argument(
        "--account-id", help="account for every tenant (default: AIGW_ACCOUNT_ID, else each tenant's)"
    )
    serve.add_argument("--output-reservation", type=int, default=0, metavar="TOKENS", help="default: 0")
    serve.add_argument("--metrics-jsonl", type=Path, metavar="FILE", help="append usage records to this file")
    serve.set_defaults(handler=_serve)


def _serve(args: argparse.Namespace) -> int:
    import pydantic
    import uvicorn

    from aigw_fakes.hardened_http import listening_socket
    from aigw_harness.gateway.server import create_app, server_config
    from aigw_harness.gateway.settings import GatewaySettings, UpstreamSettings

    if not args.upstream.startswith(("http://", "https://")):
        raise ConfigError(f"--upstream must start with http:// or https://, got {args.upstream!r}")
    try:
        settings = GatewaySettings(
            tenants_dir=args.tenants,
            env=dict(args.env),
            upstream=UpstreamSettings(
                base_url=args.upstream,
                account_id=args.account_id or os.environ.get("AIGW_ACCOUNT_ID") or None,
                api_token=os.environ.get("AIGW_API_TOKEN") or None,
                gateway_token=os.environ.get("AIGW_GATEWAY_TOKEN") or None,
            ),
            budget_store=args.budget_store,
            output_reservation=args.output_reservation,
            metrics_jsonl=args.metrics_jsonl,
        )
    except pydantic.ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in error['loc']) or 'settings'}: {error['msg']}"
            for error in exc.errors()
        )
        raise ConfigError(f"gateway settings: {problems}") from None
    if not 0 <= args.port <= 65535:
        raise ConfigError(f"--port must be between 0 and 65535, got {args.port}")
    app = create_app(settings)
    # Bind before announcing, so that the printed address is the real one (port 0 picks a free port).
    try:
        sock = listening_socket(args.host, args.port)
    except OSError as exc:
        raise ConfigError(f"cannot listen on {args.host}:{args.port}: {exc.strerror or exc}") from None
    with sock:
        port = sock.getsockname()[1]
        host = f"[{args.host}]" if ":" in args.host else args.host
        print(f"aigw gateway: serving on http://{host}:{port} -> {settings.upstream.base_url}", flush=True)
        config = server_config(app, args.host, port, lifespan="on", log_level="warning")
        with asyncio.Runner(loop_factory=_fast_loop()) as runner:
            runner.run(uvicorn.Server(config).serve(sockets=[sock]))
    return 0


def _fast_loop() -> Callable[[], asyncio.AbstractEventLoop] | None:
    """uvloop's event loop when it is installed (the ``speed`` extra): its socket writes, a large cost of
    relaying a stream, are in C."""
    try:
        import uvloop
    except ImportError:
        return None
    factory: Callable[[], asyncio.AbstractEventLoop] = uvloop.new_event_loop
    return factory
