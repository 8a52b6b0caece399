"""Fault conduct through ``/chat``: when an answer is complete, which failures fall back, time limits per
attempt, ``Retry-After``, and error codes that keep a refusal's cause."""

from __future__ import annotations

import json
from typing import Any

import httpx

from aigw_fakes.server import FakeGateway
from aigw_harness.gateway import ErrorClass, FallbackPolicy, PlatformQuirks, Timeouts

from .conftest import LLAMA, LLAMA_FAST, SESSION, GatewayFactory
from .test_streaming import CHAT, EXAMPLE, WITH_FALLBACK, kinds, payloads, text

CONTEXT_ERROR = {
    "status": 400,
    "body": {
        "errors": [{"code": 5021, "message": "The input exceeds the model's context window"}],
        "success": False,
    },
}


async def test_usage_frame_completes_a_stream_without_done(
    start_gateway: GatewayFactory, fake: FakeGateway
) -> None:
    fake.behaviour.load({"default": {"text": "all of it", "prompt_tokens": 5, "stream": {"done": False}}})
    async with start_gateway() as (gw, client):
        response = await client.post("/chat", headers=EXAMPLE, json=CHAT)
    assert kinds(response) == ["message", "message", "message", "done"]
    assert text(response) == "all of it"
    assert gw.metrics.last.status == "success"
    assert gw.metrics.last.tokens_in == 5  # the usage frame was read


async def test_context_length_error_goes_to_the_fallback(
    start_gateway: GatewayFactory, fake: FakeGateway
) -> None:
    fake.behaviour.load({"models": {LLAMA_FAST: [{"error": CONTEXT_ERROR}]}, "default": {"text": "short"}})
    async with start_gateway(env=WITH_FALLBACK) as (gw, client):
        response = await client.post("/chat", headers=EXAMPLE, json=CHAT)
    assert [r.model for r in fake.store.records()] == [LLAMA_FAST, LLAMA]
    assert response.headers["x-model-id"] == LLAMA
    assert text(response) == "short"
    assert gw.metrics.last.attempts[0].error_class == "context_length"


async def test_context_length_keeps_its_cause_when_nothing_serves(
    start_gateway: GatewayFactory, fake: FakeGateway
) -> None:
    fake.behaviour.load({"default": {"error": CONTEXT_ERROR}})
    async with start_gateway(env=WITH_FALLBACK) as (gw, client):
        streamed = await client.post("/chat", headers=EXAMPLE, json=CHAT)
        answered = await client.post("/chat", headers=EXAMPLE, json={**CHAT, "stream": False})
    assert payloads(streamed) == [
        (
            "error",
            {"code": "ai_context_length_exceeded", "message": "The conversation is too long for the model"},
        ),
        ("done", {"done": True}),
    ]
    assert answered.status_code == 400
    assert answered.json()["error"]["code"] == "ai_context_length_exceeded"
    assert gw.metrics.last.error_code == "ai_context_length_exceeded"


async def test_content_filter_is_not_an_outage(start_gateway: GatewayFactory, fake: FakeGateway) -> None:
    fake.behaviour.load({"default": {"error": "nsfw_prompt"}})
    async with start_gateway(env=WITH_FALLBACK) as (gw, client):
        streamed = await client.post("/chat", headers=EXAMPLE, json=CHAT)
        answered = await client.post("/chat", headers=EXAMPLE, json={**CHAT, "stream": False})
    # Another model would see the same content: no fallback by default.
    assert [r.model for r in fake.store.records()] == [LLAMA_FAST, LLAMA_FAST]
    assert payloads(streamed)[0] == (
        "error",
        {"code": "ai_content_filtered", "message": "The model's content filter refused the request"},
    )
    assert (answered.status_code, answered.content) == (
        400,
        b'{"ok":false,"error":{"code":"ai_content_filtered",'
        b'"message":"The model\'s content filter refused the request"}}',
    )
    assert gw.ledger.view().usage == {}


async def test_generic_error_code_quirk_reports_every_failure_as_ai_error(
    start_gateway: GatewayFactory, fake: FakeGateway
) -> None:
    fake.behaviour.load({"default": {"error": "nsfw_prompt"}})
    async with start_gateway(quirks=PlatformQuirks(generic_error_code=True)) as (_, client):
        answered = await client.post("/chat", headers=EXAMPLE, json={**CHAT, "stream": False})
    assert answered.status_code == 502
    assert answered.json()["error"] == {"code": "ai_error", "message": "AI provider unavailable"}


async def test_an_unknown_requested_model_is_the_clients_mistake(
    start_gateway: GatewayFactory, fake: FakeGateway
) -> None:
    fake.behaviour.load({"default": {"error": "out_of_capacity"}})
    unknown = {**CHAT, "modelId": "@cf/meta/llama-9-unknown", "stream": False}
    async with start_gateway() as (gw, client):
        mistaken = await client.post("/chat", headers=EXAMPLE, json=unknown)
        outage = await client.post("/chat", headers=EXAMPLE, json={**CHAT, "stream": False})
    assert mistaken.status_code == 400
    assert mistaken.json()["error"] == {
        "code": "model_unavailable",
        "message": "Requested model is not available",
    }
    assert outage.status_code == 502
    assert outage.json()["error"]["code"] == "ai_error"
    assert gw.metrics.records[0].attempts[0].error_class == "model"


async def test_first_token_timeout_moves_to_the_fallback(
    start_gateway: GatewayFactory, fake: FakeGateway
) -> None:
    # The head arrives at once; the first token would come 10 s later (scaled: 0.1 s ... times 100).
    fake.behaviour.load(
        {"models": {LLAMA_FAST: [{"stream": {"stall": {"after_events": 0, "seconds": 1000}}}]}}
    )
    timeouts = Timeouts(first_token=0.2, between_events=30)
    async with start_gateway(env=WITH_FALLBACK, timeouts=timeouts) as (gw, client):
        response = await client.post("/chat", headers=EXAMPLE, json=CHAT)
    assert response.headers["x-model-id"] == LLAMA
    first = gw.metrics.last.attempts[0]
    assert (first.error_class, first.message) == ("timeout", "no token within the first-token timeout")


async def test_attempt_limit_ends_a_slow_stream_in_band(
    start_gateway: GatewayFactory, fake: FakeGateway
) -> None:
    fake.behaviour.load({"default": {"tokens": 400, "token_delay_ms": 1000}})  # 10 ms a token, 4 s in all
    async with start_gateway(timeouts=Timeouts(attempt=0.3)) as (gw, client):
        response = await client.post("/chat", headers=EXAMPLE, json=CHAT)
    assert kinds(response)[-2:] == ["error", "done"]
    attempt = gw.metrics.last.attempts[0]
    assert (attempt.outcome, attempt.error_class) == ("failed_mid_stream", "timeout")


def _retry_after_upstream(statuses: list[tuple[int, dict[str, str]]], seen: list[str]) -> httpx.MockTransport:
    """Answers each call with the next scripted failure, then with a one-token JSON answer."""

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request.url.path.rsplit("/workers-ai/", 1)[1])
        if statuses:
            status, headers = statuses.pop(0)
            body = {"errors": [{"code": 3040, "message": "Capacity temporarily exceeded"}], "success": False}
            return httpx.Response(status, json=body, headers=headers)
        return httpx.Response(200, json={"result": {"response": "ok"}, "success": True})

    return httpx.MockTransport(handler)


async def test_retry_after_is_waited_out_when_no_fallback_is_left(start_gateway: GatewayFactory) -> None:
    seen: list[str] = []
    transport = _retry_after_upstream([(429, {"retry-after": "0.05"})], seen)
    async with start_gateway(transport=transport) as (gw, client):
        response = await client.post("/chat", headers=EXAMPLE, json={**CHAT, "stream": False})
    assert response.status_code == 200
    assert seen == [LLAMA, LLAMA]
    assert gw.metrics.last.attempts[0].retried_after_s == 0.05


async def test_retry_after_prefers_the_fallback_by_default(start_gateway: GatewayFactory) -> None:
    seen: list[str] = []
    transport = _retry_after_upstream([(429, {"retry-after": "5"})], seen)
    async with start_gateway(transport=transport, env=WITH_FALLBACK) as (_, client):
        response = await client.post("/chat", headers=EXAMPLE, json={**CHAT, "stream": False})
    assert response.headers["x-model-id"] == LLAMA
    assert seen == [LLAMA_FAST, LLAMA]


async def test_retry_after_wait_policy_retries_the_same_model(start_gateway: GatewayFactory) -> None:
    seen: list[str] = []
    transport = _retry_after_upstream([(503, {"retry-after": "0"})], seen)
    policy = FallbackPolicy(retry_after="wait")
    async with start_gateway(transport=transport, env=WITH_FALLBACK, fallback=policy) as (_, client):
        response = await client.post("/chat", headers=EXAMPLE, json=CHAT)
    assert response.headers["x-model-id"] == LLAMA_FAST
    assert seen == [LLAMA_FAST, LLAMA_FAST]


async def test_retry_after_beyond_the_deadline_is_not_waited(start_gateway: GatewayFactory) -> None:
    seen: list[str] = []
    transport = _retry_after_upstream([(429, {"retry-after": "2"})], seen)
    timeouts = Timeouts(total=1)
    async with start_gateway(transport=transport, timeouts=timeouts) as (gw, client):
        response = await client.post("/chat", headers=EXAMPLE, json={**CHAT, "stream": False})
    assert response.status_code == 502
    assert seen == [LLAMA]
    assert gw.metrics.last.attempts[0].retried_after_s is None


async def test_fallback_classes_are_configurable(start_gateway: GatewayFactory, fake: FakeGateway) -> None:
    fake.behaviour.load({"models": {LLAMA_FAST: [{"error": CONTEXT_ERROR}]}})
    policy = FallbackPolicy(on=frozenset({ErrorClass.SERVER}))
    async with start_gateway(env=WITH_FALLBACK, fallback=policy) as (_, client):
        response = await client.post("/chat", headers=EXAMPLE, json=CHAT)
    assert [r.model for r in fake.store.records()] == [LLAMA_FAST]
    assert payloads(response)[0][1]["code"] == "ai_context_length_exceeded"


def _json(response: httpx.Response) -> Any:
    return json.loads(response.content)


async def test_a_lone_surrogate_does_not_poison_the_session(
    start_gateway: GatewayFactory, fake: FakeGateway
) -> None:
    fake.behaviour.load({"default": {"text": "fine"}})
    poisoned = '{"sessionId":"' + SESSION + '","message":"hi \\ud800"}'
    async with start_gateway() as (_, client):
        first = await client.post(
            "/chat", headers={**EXAMPLE, "content-type": "application/json"}, content=poisoned
        )
        later = await client.post("/chat", headers=EXAMPLE, json=CHAT)
        history = await client.get(f"/chat/{SESSION}/history", headers=EXAMPLE)
    assert (first.status_code, text(first)) == (200, "fine")
    assert (later.status_code, text(later)) == (200, "fine")
    assert history.status_code == 200
    assert [m["content"] for m in _json(history)["data"]["messages"]] == [
        "hi \ufffd",
        "fine",
        "hello",
        "fine",
    ]
    sent = json.loads(fake.store.records()[0].request_body or b"{}")
    assert sent["messages"][0]["content"] == "hi \ufffd"


async def test_a_non_ascii_request_id_is_carried(start_gateway: GatewayFactory, fake: FakeGateway) -> None:
    fake.behaviour.load({"default": {"text": "fine"}})
    async with start_gateway() as (gw, client):
        response = await client.post(
            "/chat", headers={**EXAMPLE, "x-request-id": "trace-é".encode()}, json=CHAT
        )
    assert (response.status_code, text(response)) == (200, "fine")
    assert gw.metrics.last.trace_id == "trace-é"
    assert fake.store.records()[0].metadata["traceId"] == "trace-é"


async def test_scripted_retry_after_is_waited_then_the_same_model_serves(
    start_gateway: GatewayFactory, fake: FakeGateway
) -> None:
    fake.behaviour.load(
        {"models": {LLAMA_FAST: [{"times": 1, "error": {"name": "out_of_capacity", "retry_after": 0}}]}}
    )
    policy = FallbackPolicy(retry_after="wait")
    async with start_gateway(env=WITH_FALLBACK, fallback=policy) as (gw, client):
        response = await client.post("/chat", headers=EXAMPLE, json=CHAT)
    assert [r.model for r in fake.store.records()] == [LLAMA_FAST, LLAMA_FAST]
    assert response.headers["x-model-id"] == LLAMA_FAST
    assert gw.metrics.last.attempts[0].retried_after_s == 0.0


async def test_context_window_of_the_fake_goes_to_the_fallback(
    start_gateway: GatewayFactory, fake: FakeGateway
) -> None:
    fake.behaviour.load({"models": {LLAMA_FAST: [{"error": "context_window_exceeded"}]}})
    async with start_gateway(env=WITH_FALLBACK) as (gw, client):
        response = await client.post("/chat", headers=EXAMPLE, json=CHAT)
    assert response.headers["x-model-id"] == LLAMA
    assert gw.metrics.last.attempts[0].error_class == "context_length"
