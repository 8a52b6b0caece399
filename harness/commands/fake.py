"""``aigw fake serve``: run the fake Cloudflare AI Gateway in the foreground.

    aigw fake serve [--host 127.0.0.1] [--port 8787] [--behaviour FILE] [--seed N] [--time-scale X]
                    [--config FILE]

Gateway paths are served under ``/v1/``, Cloudflare API paths under ``/client/v4/``, the control API under
``/__aigw/``. A behaviour or configuration file with mistakes stops start-up with the file, line and field.
"""

from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path

from aigw_fakes.behaviour import BehaviourDocument
from aigw_fakes.config import FakeConfig
from aigw_fakes.datafiles import load_model
from aigw_harness.errors import ConfigError


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser("fake", help="the fake Cloudflare AI Gateway and Workers AI")
    commands = parser.add_subparsers(title="commands", metavar="COMMAND", required=True)
    serve = commands.add_parser("serve", help="serve the fake until interrupted")
    serve.add_argument("--host", default="127.0.0.1", help="interface to listen on (default: 127.0.0.1)")
    serve.add_argument(
        "--port", type=int, default=8787, help="port to listen on; 0 picks a free one (default: 8787)"
    )
    serve.add_argument("--behaviour", type=Path, metavar="FILE", help="behaviour document (YAML or JSON)")
    serve.add_argument("--config", type=Path, metavar="FILE", help="fake configuration (YAML or JSON)")
    serve.add_argument("--seed", type=int, help="seed for generated text, padding, jitter and ids")
    serve.add_argument(
        "--time-scale", type=float, metavar="X", help="multiply every delay by X (0.01: 100x faster)"
    )
    serve.add_argument(
        "--log-level", default="info", choices=["critical", "error", "warning", "info", "debug"]
    )
    serve.set_defaults(handler=_serve)


def _serve(args: argparse.Namespace) -> int:
    from aigw_fakes.server import serve_forever

    config = load_model(args.config, FakeConfig) if args.config else FakeConfig()
    updates: dict[str, object] = {}
    if args.behaviour is not None:
        load_model(args.behaviour, BehaviourDocument)  # fail before binding the port, with file/line/field
        updates["behaviour_file"] = str(args.behaviour)
    if args.seed is not None:
        updates["seed"] = args.seed
    if args.time_scale is not None:
        if not math.isfinite(args.time_scale) or args.time_scale > 1000:
            raise ConfigError(f"--time-scale must be a number of at most 1000, got {args.time_scale}")
        if args.time_scale <= 0:
            raise ConfigError(f"--time-scale must be greater than 0, got {args.time_scale}")
        updates["time_scale"] = args.time_scale
    if not 0 <= args.port <= 65535:
        raise ConfigError(f"--port must be between 0 and 65535, got {args.port}")
    config = config.model_copy(update=updates)
    account = config.default_account

    gateways = [gateway.id for gateway in account.gateways]
    if config.fidelity.auto_create_gateways:
        gateways.append("any other (created on first use)")
    elif "default" not in gateways:
        gateways.append("default (created on first use, authentication on)")

    def announce(url: str) -> None:
        print(
            f"aigw fake: serving on {url} ("
            f"gateway paths {url}/v1/{account.id}/<gateway>/..., API paths {url}/client/v4/..., "
            f"control {url}/__aigw/)\n"
            f"  account id: {account.id}\n"
            f"  API token:  {account.api_tokens[0]} (Authorization and cf-aig-authorization: Bearer TOKEN)\n"
            f"  gateways:   {', '.join(gateways)}",
            file=sys.stderr,
            flush=True,
        )

    try:
        serve_forever(config, args.host, args.port, args.log_level, announce)
    except OSError as exc:
        raise ConfigError(f"cannot listen on {args.host}:{args.port}: {exc.strerror or exc}") from None
    return 0
