"""``aigw live``: the gateway spike against a real Cloudflare account, safely.

    aigw live preflight [PATH]... [--tenants DIR] [--model M]... [--api-base URL] [--gateway-base URL]
    aigw live plan [PATH]... [--tenants DIR] [cost guard flags]
    aigw live spike [--tenant-id T] [--model M]... [--worker-url URL] [--dry-run] [--out DIR]
                    [--max-requests N] [--max-tokens N] [--max-usd X] [--neuron-rate MODEL=IN,OUT]...
                    [--log-timeout S] [--skip-preflight]

Credentials come from the environment (see ``docs/live-spike.md``). ``--dry-run`` prints the plan and its
worst-case cost and sends nothing; a plan over a cap does not start until the cap is raised with its flag.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from collections.abc import Mapping
from pathlib import Path

import httpx

from aigw_harness.errors import ConfigError
from aigw_harness.live.client import CloudflareClient
from aigw_harness.live.cost import CostCaps, CostGuard, Estimate, PlannedRequest, parse_rate
from aigw_harness.live.credentials import (
    API_BASE,
    API_BASE_ENV,
    GATEWAY_BASE,
    GATEWAY_BASE_ENV,
    LiveCredentials,
    Secret,
)
from aigw_harness.live.findings import spike_results
from aigw_harness.live.guarded import LIVE_OUTPUT_TOKENS
from aigw_harness.live.logcheck import PollSchedule
from aigw_harness.live.preflight import run_preflight
from aigw_harness.live.spike import (
    FALLBACK_MODEL,
    PRIMARY_MODEL,
    WorkerClient,
    default_plan,
    new_run_id,
    run_spike,
)
from aigw_harness.report.render import write_report

SPIKE_KEY_ENV = "AIGW_SPIKE_KEY"


def add_cost_flags(parser: argparse.ArgumentParser) -> None:
    caps = CostCaps()
    group = parser.add_argument_group("cost guard")
    group.add_argument("--max-requests", type=int, default=caps.max_requests, help="cap on requests per run")
    group.add_argument(
        "--max-tokens", type=int, default=caps.max_tokens, help="cap on worst-case tokens per run"
    )
    group.add_argument(
        "--max-usd", type=float, default=caps.max_usd, help="cap on worst-case cost in USD per run"
    )
    group.add_argument(
        "--neuron-rate",
        action="append",
        default=[],
        metavar="MODEL=IN,OUT",
        help="neurons per million input/output tokens for a model the guard does not know",
    )
    group.add_argument(
        "--dry-run", action="store_true", help="print the plan and its worst case; send nothing"
    )


def add_endpoint_flags(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("endpoints (a stand-in such as 'aigw fake serve' for a rehearsal)")
    group.add_argument(
        "--api-base", metavar="URL", help=f"Cloudflare's API (default: ${API_BASE_ENV} or {API_BASE})"
    )
    group.add_argument(
        "--gateway-base", metavar="URL", help=f"AI Gateway (default: ${GATEWAY_BASE_ENV} or {GATEWAY_BASE})"
    )


def credentials_from(args: argparse.Namespace) -> LiveCredentials:
    return LiveCredentials.from_environment(
        os.environ, api_base=args.api_base, gateway_base=args.gateway_base
    )


def guard_from(args: argparse.Namespace) -> CostGuard:
    rates = dict(parse_rate(text) for text in args.neuron_rate)
    return CostGuard(CostCaps(args.max_requests, args.max_tokens, args.max_usd), rates)


def render_plan(estimates: list[Estimate], caps: CostCaps) -> str:
    lines = ["plan (worst case per request: input ≤ prompt bytes + template allowance, output = max_tokens):"]
    for e in estimates:
        lines.append(
            f"  {e.name:<22} {e.model:<40} ≤{e.input_tokens:>5} in ≤{e.output_tokens:>5} out "
            f"{e.neurons:9.3f} neurons  ${e.usd:.6f}"
        )
    total_usd = sum(e.usd for e in estimates)
    lines.append(
        f"  total: {len(estimates)} requests, ≤{sum(e.tokens for e in estimates)} tokens, "
        f"≤{sum(e.neurons for e in estimates):.3f} neurons, ≤${total_usd:.6f} "
        f"(caps: {caps.max_requests} requests, {caps.max_tokens} tokens, ${caps.max_usd:.6f})"
    )
    return "\n".join(lines)


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser("live", help="the gateway spike against a real Cloudflare account")
    commands = parser.add_subparsers(title="commands", metavar="COMMAND", required=True)

    preflight = commands.add_parser(
        "preflight", help="check token, gateway, logging and models; send nothing"
    )
    preflight.add_argument("--model", action="append", default=[], help="a model to check (repeatable)")
    preflight.add_argument(
        "paths",
        nargs="*",
        type=Path,
        metavar="PATH",
        help="scenarios whose MODEL_ID/FALLBACK_MODEL_ID are checked too (default: none)",
    )
    preflight.add_argument(
        "--tenants",
        type=Path,
        default=Path("scenarios/tenants"),
        metavar="DIR",
        help="tenant files whose models are checked (default: scenarios/tenants)",
    )
    add_endpoint_flags(preflight)
    preflight.set_defaults(handler=_preflight)

    plan = commands.add_parser(
        "plan", help="worst-case cost of running scenarios with --target live; sends nothing"
    )
    plan.add_argument("paths", nargs="*", type=Path, metavar="PATH", help="scenario files or directories")
    plan.add_argument("--tenants", type=Path, default=Path("scenarios/tenants"), metavar="DIR")
    plan.add_argument(
        "--max-output-tokens",
        type=int,
        default=LIVE_OUTPUT_TOKENS,
        metavar="N",
        help=f"the bound on each answer the live target sets (default: {LIVE_OUTPUT_TOKENS})",
    )
    add_cost_flags(plan)
    plan.set_defaults(handler=_plan_scenarios)

    spike = commands.add_parser("spike", help="run the spike checklist through the real gateway")
    spike.add_argument("--tenant-id", default="spike-tenant", help="sent as metadata.tenantId")
    spike.add_argument(
        "--model",
        action="append",
        default=[],
        help=f"models to probe (default: {PRIMARY_MODEL} and {FALLBACK_MODEL})",
    )
    spike.add_argument(
        "--worker-url", help=f"the deployed spike Worker, for the binding path (key in {SPIKE_KEY_ENV})"
    )
    spike.add_argument(
        "--out",
        type=Path,
        default=Path("spike-results"),
        help="directory for results.json, report.md and report.html",
    )
    spike.add_argument(
        "--log-timeout", type=float, default=60.0, help="seconds to wait for each log (default 60)"
    )
    spike.add_argument("--skip-preflight", action="store_true", help="do not run the preflight first")
    add_cost_flags(spike)
    add_endpoint_flags(spike)
    spike.set_defaults(handler=_spike)


def _preflight(args: argparse.Namespace) -> int:
    from aigw_harness.live.models import models_named
    from aigw_harness.scenarios.loader import discover, load_scenarios

    creds = credentials_from(args)
    environments: list[Mapping[str, str]] = [os.environ]
    if args.paths:
        # Scenario environments are test arrangements (one names a retired model on purpose): only on request.
        environments += [
            {**item.scenario.environment_defaults, **item.scenario.environment}
            for item in load_scenarios(discover(args.paths))
        ]
    tenant_files = sorted(args.tenants.glob("*.json")) if args.tenants.is_dir() else []
    models = models_named(tenant_files, environments, args.model)
    if not models:
        raise ConfigError(
            f"no model to check: {args.tenants} has no tenant files and no --model, MODEL_ID or "
            "FALLBACK_MODEL_ID names one"
        )

    async def run() -> int:
        async with httpx.AsyncClient(timeout=30) as http:
            report = await run_preflight(CloudflareClient(creds, http), models)
        print(creds.redactor().text(report.render()))
        return 0 if report.ok else 1

    return asyncio.run(run())


def _plan_scenarios(args: argparse.Namespace) -> int:
    from aigw_harness.live.scenario_cost import plan_scenarios
    from aigw_harness.live.target import LiveTarget
    from aigw_harness.scenarios.loader import discover, load_scenarios

    guard = guard_from(args)
    loaded = load_scenarios(discover(args.paths or [Path("scenarios")]))
    if args.max_output_tokens < 1:
        raise ConfigError(f"--max-output-tokens must be 1 or more, got {args.max_output_tokens}")
    plans = plan_scenarios(loaded, args.tenants, guard, LiveTarget.capabilities, args.max_output_tokens)
    print(
        "worst case per scenario with --target live "
        f"(two upstream calls per chat, {args.max_output_tokens} output tokens each):"
    )
    for plan in plans:
        if plan.skipped:
            print(f"  {plan.scenario_id:<36} {plan.skipped}")
        else:
            calls = f"{len(plan.requests):>4} calls ≤{plan.tokens:>7} tokens ≤${plan.usd:.6f}"
            print(f"  {plan.scenario_id:<36} {calls}")
    requests = [r for p in plans for r in p.requests]
    estimates = guard.check_plan(requests)  # refuses when the whole run would go over a cap
    print(render_plan(estimates, guard.caps).splitlines()[-1].strip())
    caps = guard.caps
    options = (
        f"max_requests={caps.max_requests} max_tokens={caps.max_tokens} max_usd={caps.max_usd} "
        f"max_output_tokens={args.max_output_tokens}"
    )
    flags = " ".join(f"--target-option {o}" for o in options.split())
    print(f"run it with: aigw run --target live {flags} ...")
    return 0


def _plan(args: argparse.Namespace) -> list[PlannedRequest]:
    models = tuple(args.model) or (PRIMARY_MODEL, FALLBACK_MODEL)
    return default_plan(models, binding=args.worker_url is not None)


def _spike(args: argparse.Namespace) -> int:
    guard = guard_from(args)
    plan = _plan(args)
    estimates = guard.check_plan(plan)  # refuses before anything else when over a cap
    print(render_plan(estimates, guard.caps))
    if args.dry_run:
        print("dry run: nothing was sent")
        return 0
    creds = credentials_from(args)
    key = os.environ.get(SPIKE_KEY_ENV, "")
    if args.worker_url and not key:
        raise ConfigError(
            f"--worker-url needs {SPIKE_KEY_ENV}: the key the spike Worker was given (SPIKE_KEY)"
        )
    redactor = creds.redactor()
    if key:
        redactor.add(SPIKE_KEY_ENV, key)

    async def run() -> int:
        async with httpx.AsyncClient(timeout=120) as http:
            client = CloudflareClient(creds, http)
            client.redactor = redactor
            if not args.skip_preflight:
                report = await run_preflight(client, sorted({r.model for r in plan}))
                print(redactor.text(report.render()))
                if not report.ok:
                    print(
                        "preflight failed: nothing was sent (fix the above, or --skip-preflight)",
                        file=sys.stderr,
                    )
                    return 1
            worker = (
                WorkerClient(args.worker_url, Secret(SPIKE_KEY_ENV, key), http, client)
                if args.worker_url
                else None
            )
            result = await run_spike(
                client,
                plan,
                guard,
                tenant_id=args.tenant_id,
                run_id=new_run_id(),
                worker=worker,
                schedule=PollSchedule(timeout_s=args.log_timeout),
            )
        paths = write_report(spike_results(result), args.out)
        print(paths.report_md.read_text(encoding="utf-8"))
        print(f"written: {paths.results_json}, {paths.report_md}, {paths.report_html}", file=sys.stderr)
        return 0 if result.ok else 1

    return asyncio.run(run())
