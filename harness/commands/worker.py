"""``aigw worker``: run a Worker from its Wrangler file in workerd, ``env.AI`` pointed at an upstream, and
set up what that needs.

    aigw worker serve --config path/to/wrangler.jsonc [--env NAME] --upstream URL [--port N]
    aigw worker setup [--prefix DIR]    # npm ci of the pinned miniflare and esbuild into the aigw cache
    aigw worker js-path                 # the shipped npm package of the env.AI adapter, for npm install

The upstream is the fake AI Gateway (``aigw fake serve``): the Worker's ``env.AI`` speaks the binding wire
protocol to it. Runs until interrupted; uncaught exceptions and hung requests are printed as they happen.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import signal
import sys
from pathlib import Path

from aigw_harness.errors import ConfigError
from aigw_harness.worker import node_packages
from aigw_harness.worker.bridge import JS_DIR, WorkerBridge, WorkerEvent
from aigw_harness.worker.wrangler import WorkerConfig, load_worker_config


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "worker",
        help="run your Worker (wrangler project) in workerd against the fake gateway",
        description="Run a Cloudflare Worker locally in workerd (through Miniflare) with env.AI answered by "
        "the fake AI Gateway. Needs Node.js 20.18+ and the npm packages miniflare and esbuild: the Worker "
        "project's own, or the pinned ones 'aigw worker setup' installs.",
    )
    actions = parser.add_subparsers(title="commands", metavar="COMMAND", required=True)
    serve = actions.add_parser("serve", help="bundle and serve the Worker until interrupted")
    serve.add_argument(
        "--config", required=True, help="the Worker's wrangler.jsonc/.json/.toml (or its directory)"
    )
    serve.add_argument("--env", default=None, help="the Wrangler environment (env.NAME) to use")
    serve.add_argument(
        "--upstream", required=True, help="the fake gateway's base URL, e.g. http://127.0.0.1:8788"
    )
    serve.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    serve.add_argument(
        "--port", type=int, default=8789, help="port to listen on (default: 8789; 0 picks a free one)"
    )
    serve.add_argument(
        "--var",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="set or override a Worker var (repeatable)",
    )
    serve.add_argument("--verbose", action="store_true", help="also print the Worker's console output")
    serve.add_argument(
        "--node-modules",
        default=None,
        metavar="DIR",
        help="the node_modules folder with miniflare and esbuild (default: the Worker project's, else "
        "the one 'aigw worker setup' filled; AIGW_NODE_MODULES sets it too)",
    )
    serve.set_defaults(handler=_serve)
    setup = actions.add_parser(
        "setup",
        help="install the pinned miniflare and esbuild with npm, where the Worker bridge finds them",
        description="Run 'npm ci' with the package.json and lock file shipped in aigw-harness, installing "
        "the miniflare (with workerd) and esbuild versions it pins into a per-user cache folder, which "
        "the Worker bridge searches after the Worker project's own node_modules. Needs npm.",
    )
    setup.add_argument(
        "--prefix",
        default=None,
        metavar="DIR",
        help="install into DIR/node_modules instead (then pass it as node_modules=DIR/node_modules)",
    )
    setup.add_argument(
        "--print", action="store_true", help="print the folder and the npm command instead of running it"
    )
    setup.set_defaults(handler=_setup)
    js_path = actions.add_parser(
        "js-path",
        help="print the folder of the npm package @aigw-harness/worker-bridge (the env.AI adapter)",
        description="Print the folder of the npm package @aigw-harness/worker-bridge shipped in "
        'aigw-harness, for your own Worker tests: npm install "$(aigw worker js-path)", then '
        'import { createAiBinding } from "@aigw-harness/worker-bridge".',
    )
    js_path.set_defaults(handler=_js_path)


def _setup(args: argparse.Namespace) -> int:
    prefix = node_packages.cache_dir() if args.prefix is None else Path(args.prefix).expanduser().resolve()
    if args.print:
        print(prefix)
        manifests = [node_packages.RUNTIME_DIR / n for n in ("package.json", "package-lock.json")]
        print(f"mkdir -p {prefix} && cp {manifests[0]} {manifests[1]} {prefix}/")
        print(" ".join(node_packages.install_command(prefix)))
        return 0
    print(
        f"installing {', '.join(f'{k} {v}' for k, v in sorted(node_packages.pinned_versions().items()))} "
        f"into {prefix} (npm ci) ...",
        flush=True,
    )
    found = node_packages.install(prefix)
    print(f"installed {found.describe()}")
    if args.prefix is not None:
        print(f"use it with --target-option node_modules={found.node_modules} (or AIGW_NODE_MODULES)")
    else:
        print(
            "the Worker bridge finds it there when the Worker project has no supported miniflare of its own"
        )
    return 0


def _js_path(args: argparse.Namespace) -> int:
    print(JS_DIR)
    return 0


def _parse_vars(pairs: list[str]) -> dict[str, str]:
    out: dict[str, str] = {}
    for pair in pairs:
        name, eq, value = pair.partition("=")
        if not eq or not name:
            raise ConfigError(f"--var {pair!r}: expected NAME=VALUE")
        out[name] = value
    return out


def _serve(args: argparse.Namespace) -> int:
    if not args.upstream.startswith(("http://", "https://")):
        raise ConfigError(
            f"--upstream {args.upstream!r}: expected an http:// URL (the fake gateway's base URL)"
        )
    if not 0 <= args.port <= 65535:
        raise ConfigError(f"--port {args.port}: expected 0-65535")
    config = load_worker_config(args.config, args.env)
    extra_vars = _parse_vars(args.var)
    return asyncio.run(_serve_async(args, config, extra_vars))


async def _serve_async(args: argparse.Namespace, config: WorkerConfig, extra_vars: dict[str, str]) -> int:
    verbose: bool = args.verbose

    def show(event: WorkerEvent) -> None:
        if event.kind == "log" and not verbose:
            return
        print(event.describe(), file=sys.stderr if event.kind != "log" else sys.stdout, flush=True)

    for warning in config.warnings:
        print(f"warning: {warning}", file=sys.stderr)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError):
            loop.add_signal_handler(signum, stop.set)
    async with WorkerBridge.running(
        config,
        args.upstream,
        host=args.host,
        port=args.port,
        extra_vars=extra_vars,
        node_modules=args.node_modules,
    ) as worker:
        worker.subscribe(show)
        env = f" (env {config.environment})" if config.environment else ""
        print(f"Worker {config.name}{env} ready on {worker.url}", flush=True)
        if config.ai_binding:
            print(f"  env.{config.ai_binding} → {args.upstream} (binding wire protocol)")
        else:
            print("  no 'ai' binding declared in the Wrangler file: env.AI is not set")
        simulated = [*config.kv_namespaces, *config.d1_databases, *config.r2_buckets]
        simulated += [d.binding for d in config.durable_objects]
        if simulated:
            print(f"  simulated in workerd: {', '.join(simulated)}")
        for stub in config.stubs:
            print(f"  stubbed (fails when used): {stub.binding} ({stub.kind})")
        print("Press Ctrl-C to stop.", flush=True)
        exit_status: list[int] = []

        async def watch_exit() -> None:
            exit_status.append(await worker.wait_exited())
            stop.set()

        async with asyncio.TaskGroup() as tasks:
            watcher = tasks.create_task(watch_exit())
            await stop.wait()
            watcher.cancel()
        if exit_status:
            print(
                f"aigw: error: the Worker process exited unexpectedly (status {exit_status[0]})",
                file=sys.stderr,
            )
            return 1
    return 0
