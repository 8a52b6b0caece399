"""Fault conduct of the reference gateway: 16 fault classes on the fake, graded from the client's side.

The classes follow the published failover benchmarks for LLM gateways (rate limits with and without
Retry-After, 5xx, capacity, slow first byte, slow first token, cuts before and after tokens, stalls,
malformed frames, error frames, missing terminators, context length, content filters, outages), adapted
to Cloudflare's shapes and driven through ``/chat``. The primary model (``MODEL_ID``) suffers the fault;
a fallback model (``FALLBACK_MODEL_ID``) is configured and healthy unless the fault says otherwise.

Each fault runs streamed and as a JSON answer, and is graded:

- pass: the client got the complete answer (or, where no answer can exist, a clear refusal whose code
  names its cause), within the deadline, without duplicated text;
- partial: the right outcome with a blemish (for example a refusal reported as a generic outage);
- safe: no answer, but a clean one: tokens already sent stay true, an error event then done (a 4xx/502
  envelope for JSON); the best possible after a cut mid-stream under the platform's contract, which has
  no event to tell a client to discard what it received;
- fail: a hang, a stream without its final done, an answer presented as complete that is not, text from
  two attempts mixed, or a 5xx other than the platform's 502 ai_error;
- not exercised: the fake cannot deliver this fault (yet); the row says which knob is missing.

Run: ``.venv/bin/python benchmarks/fault_conduct.py [--quirks]`` (``--quirks`` turns every
``PlatformQuirks`` switch on and the malformed-frame policy to ``fail``, to show the platform's own
conduct beside the reference's). Loopback only; about 15 s.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import httpx

from aigw_fakes.config import AccountConfig, FakeConfig, GatewayConfig
from aigw_fakes.server import FakeGateway
from aigw_harness.gateway import GatewaySettings, PlatformQuirks, ReferenceGateway, Timeouts
from aigw_harness.gateway.tenants import TenantConfig
from aigw_harness.sse import SSEDecoder

ACCOUNT = "0123456789abcdef0123456789abcdef"
TOKEN = "fault-conduct-token-000000000000"
GATEWAY = "conduct-gateway"
PRIMARY = "@cf/meta/llama-3.1-8b-instruct-fast"
FALLBACK = "@cf/meta/llama-3.2-3b-instruct"
ANSWER = "one two three four five six seven eight"
SESSION = "22222222-2222-2222-2222-222222222222"
TIME_SCALE = 0.05  # the fake's delays are 20 times shorter than scripted; timeouts below are real time
TIMEOUTS = Timeouts(first_byte=1.0, first_token=1.0, between_events=1.0, attempt=5.0, total=8.0)
CLIENT_LIMIT = 15.0  # seconds: longer than the gateway's deadline, so a hang is seen as one


@dataclass(frozen=True)
class Fault:
    name: str
    what: str
    primary: dict[str, Any] | None  # the primary's outcome (a behaviour step); None: not exercised
    fallback: dict[str, Any] | None = None  # the fallback's outcome, when it fails too
    expect: str = "answer"  # "answer", or the refusal code a clear refusal carries
    best: str = "pass"  # the best grade the platform's contract allows
    missing: str = ""  # the fake's knob that is missing, when not exercised
    json_primary: dict[str, Any] | None = None  # for a JSON answer, when the fault differs; None: same
    stream_only: bool = False  # a fault of stream framing: a JSON answer has no frames to break


FAULTS = [
    Fault("rate-limit", "429 3040, no Retry-After", {"error": "out_of_capacity"}),
    Fault(
        "rate-limit-retry-after",
        "429 3040 with Retry-After: 2",
        {"error": {"name": "out_of_capacity", "retry_after": 2}},
    ),
    Fault("server-error", "500 3043", {"error": "internal_error"}),
    Fault("capacity-503", "503 3040", {"error": {"code": 3040, "status": 503, "message": "busy"}}),
    Fault("slow-first-byte", "head after 60 s", {"ttfb_ms": 60000}),
    Fault(
        "slow-first-token",
        "head, then silence",
        {"stream": {"stall": {"after_events": 0, "seconds": 60}}},
        stream_only=True,
    ),
    Fault("reset-before-head", "connection reset before the response head", {"reset_before_head": True}),
    Fault(
        "cut-after-tokens",
        "connection cut after 3 events",
        {"stream": {"cut_after_events": 3}},
        best="safe",
        json_primary={"stream": {"cut_after_bytes": 20}},
    ),
    Fault(
        "stall-after-tokens",
        "silence after 3 events",
        {"stream": {"stall": {"after_events": 3, "seconds": 60}}},
        best="safe",
        stream_only=True,
    ),
    Fault(
        "malformed-frame",
        "a frame that is not JSON",
        {"stream": {"malformed_frame": {"after_events": 2}}},
        stream_only=True,
    ),
    Fault(
        "invalid-json-200",
        "200 whose JSON body is cut short",
        {"raw_response": {"body": '{"result":{"response":"tru'}},
    ),
    Fault("missing-done", "usage frame, no [DONE]", {"stream": {"done": False}}, stream_only=True),
    Fault(
        "missing-terminators",
        "clean close after 3 words: no usage, no [DONE]",
        {"text": "one two three", "stream": {"done": False, "usage_frame": False}},
        best="safe",
        stream_only=True,
    ),
    Fault(
        "context-length", "400 7003: prompt exceeds the context window", {"error": "context_window_exceeded"}
    ),
    Fault(
        "content-filter",
        "400 8007 NSFW prompt, on every model",
        {"error": "nsfw_prompt"},
        fallback={"error": "nsfw_prompt"},
        expect="ai_content_filtered",
    ),
    Fault(
        "outage",
        "every model 503, Retry-After past the deadline",
        {"error": {"code": 3043, "status": 503, "message": "unavailable", "retry_after": 60}},
        fallback={"error": {"code": 3043, "status": 503, "message": "unavailable", "retry_after": 60}},
        expect="ai_error",
    ),
]


@dataclass
class Outcome:
    status: int | None = None
    events: list[tuple[str, Any]] = field(default_factory=list)
    body: Any = None
    seconds: float = 0.0
    hung: bool = False
    delivered: bool = False  # the primary model was called, so its scripted fault was delivered


def grade(fault: Fault, outcome: Outcome, stream: bool) -> tuple[str, str]:
    """(grade, reason) as seen by the client."""
    if fault.primary is None:
        return "not exercised", f"the fake lacks: {fault.missing}"
    if not stream and fault.stream_only:
        return "not exercised", "a JSON answer has no stream framing"
    if not outcome.delivered:
        return "not exercised", "the primary model was never called"
    if outcome.hung:
        return "fail", f"no end within {CLIENT_LIMIT:g} s"
    if stream:
        return _grade_stream(fault, outcome)
    return _grade_json(fault, outcome)


def _grade_stream(fault: Fault, outcome: Outcome) -> tuple[str, str]:
    kinds = [kind for kind, _ in outcome.events]
    text = "".join(p.get("content", "") for kind, p in outcome.events if kind == "message")
    if outcome.status != 200 or not kinds or kinds[-1] != "done" or kinds.count("done") != 1:
        return "fail", f"status {outcome.status}, events end {kinds[-2:]}"
    errors = [p for kind, p in outcome.events if kind == "error"]
    if not errors:
        if text == ANSWER and fault.expect == "answer":
            return "pass", f"complete answer in {outcome.seconds:.2f} s"
        if text != ANSWER:
            return "fail", f"presented as complete: {text!r}"
        return "partial", "answered although a refusal was expected"
    if not ANSWER.startswith(text):
        return "fail", f"text from more than one attempt: {text!r}"
    code = errors[0].get("code")
    if fault.expect != "answer" and not text:
        if code == fault.expect:
            return "pass", f"clear refusal {code} in {outcome.seconds:.2f} s"
        return "partial", f"refusal reported as {code}, expected {fault.expect}"
    return "safe", f"{len(text.split())} words then error {code}"


def _grade_json(fault: Fault, outcome: Outcome) -> tuple[str, str]:
    body = outcome.body if isinstance(outcome.body, dict) else {}
    if outcome.status == 200:
        message = body.get("data", {}).get("message")
        if message == ANSWER and fault.expect == "answer":
            return "pass", f"complete answer in {outcome.seconds:.2f} s"
        return "fail", f"200 with {message!r}"
    error = body.get("error", {}) if body.get("ok") is False else {}
    code = error.get("code")
    if code is None or ((outcome.status or 0) >= 500 and code != "ai_error"):
        return "fail", f"status {outcome.status} without the platform's envelope"
    if fault.expect != "answer":
        if code == fault.expect:
            return "pass", f"clear refusal {outcome.status} {code}"
        return "partial", f"refusal reported as {code}, expected {fault.expect}"
    return "safe", f"{outcome.status} {code}"


async def ask(client: httpx.AsyncClient, stream: bool) -> Outcome:
    outcome = Outcome()
    started = time.perf_counter()
    payload = {"sessionId": SESSION, "message": "tell me something", "stream": stream}
    try:
        async with asyncio.timeout(CLIENT_LIMIT):
            async with client.stream(
                "POST", "/chat", json=payload, headers={"x-tenant-id": "bench"}
            ) as response:
                outcome.status = response.status_code
                raw = await response.aread()
    except TimeoutError:
        outcome.hung = True
        return outcome
    outcome.seconds = time.perf_counter() - started
    if stream and outcome.status == 200:
        decoder = SSEDecoder()
        events = decoder.feed(raw) + decoder.flush()
        outcome.events = [(e.event, json.loads(e.data)) for e in events]
    else:
        try:
            outcome.body = json.loads(raw)
        except ValueError:
            outcome.body = None
    return outcome


def behaviour(fault: Fault, stream: bool) -> dict[str, Any]:
    primary = fault.primary if stream or fault.json_primary is None else fault.json_primary
    models: dict[str, list[dict[str, Any]]] = {PRIMARY: [dict(primary or {})]}
    if fault.fallback is not None:
        models[FALLBACK] = [dict(fault.fallback)]
    return {"default": {"text": ANSWER, "token_delay_ms": 20}, "models": models}


def settings(fake: FakeGateway, quirks: bool) -> GatewaySettings:
    tenant = TenantConfig.model_validate(
        {
            "tenantId": "bench",
            "accountId": ACCOUNT,
            "aiGatewayId": GATEWAY,
            "aiModels": {"chat": FALLBACK, "embeddings": "@cf/baai/bge-base-en-v1.5"},
            "vectorizeNamespace": "bench",
            "rateLimit": {"perMinute": 100000, "burst": 100000},
            "featureFlags": {},
            "allowedHosts": [],
            "apiKeys": [],
        }
    )
    extra: dict[str, Any] = {}
    if quirks:
        extra["quirks"] = PlatformQuirks(**dict.fromkeys(PlatformQuirks.model_fields, True))
        extra["malformed_frames"] = "fail"
    return GatewaySettings.for_upstream(
        fake.base_url,
        account_id=ACCOUNT,
        api_token=TOKEN,
        tenants=[tenant],
        env={"MODEL_ID": PRIMARY, "FALLBACK_MODEL_ID": FALLBACK},
        timeouts=TIMEOUTS,
        **extra,
    )


async def run(quirks: bool, show: Callable[[str], None]) -> dict[str, dict[str, int]]:
    account = AccountConfig(id=ACCOUNT, api_tokens=[TOKEN], gateways=[GatewayConfig(id=GATEWAY)])
    totals: dict[str, dict[str, int]] = {"stream": {}, "json": {}}
    async with (
        FakeGateway.running(FakeConfig(accounts=[account], time_scale=TIME_SCALE)) as fake,
        ReferenceGateway.running(settings(fake, quirks)) as gw,
        httpx.AsyncClient(base_url=gw.base_url, timeout=None) as client,
    ):
        show(f"{'fault':24} {'what':48} {'streamed':14} {'JSON':14} streamed detail")
        for fault in FAULTS:
            grades: dict[str, tuple[str, str]] = {}
            for mode, stream in (("stream", True), ("json", False)):
                fake.reset()
                outcome = Outcome()
                if fault.primary is not None and (stream or not fault.stream_only):
                    fake.behaviour.load(behaviour(fault, stream))
                    outcome = await ask(client, stream)
                    outcome.delivered = any(r.model == PRIMARY for r in fake.store.records())
                grades[mode] = grade(fault, outcome, stream)
                totals[mode][grades[mode][0]] = totals[mode].get(grades[mode][0], 0) + 1
            best = "" if fault.best == "pass" else f" (best: {fault.best})"
            show(
                f"{fault.name:24} {fault.what:48} {grades['stream'][0]:14} {grades['json'][0]:14} "
                f"{grades['stream'][1]}{best}"
            )
    return totals


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quirks", action="store_true", help="the platform's conduct: every quirk on")
    args = parser.parse_args()
    label = "platform quirks on" if args.quirks else "reference conduct"
    print(
        f"fault conduct of the reference gateway on the fake ({label}); client: httpx, one request at a time"
    )
    totals = asyncio.run(run(args.quirks, print))
    for mode in ("stream", "json"):
        counts = totals[mode]
        summary = ", ".join(
            f"{counts.get(g, 0)} {g}" for g in ("pass", "partial", "safe", "fail", "not exercised")
        )
        print(f"{'streamed' if mode == 'stream' else 'JSON':9}: {summary}")


if __name__ == "__main__":
    main()
