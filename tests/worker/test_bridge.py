"""The test Worker in workerd through the bridge, against a scripted upstream: what the Worker sends through
``env.AI``, what it gets back, KV and Durable Objects, stubs, exceptions, hung requests and clean stops."""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest
import pytest_asyncio

from aigw_harness.sse import SSEDecoder
from aigw_harness.worker.bridge import WorkerBridge, WorkerStartError
from aigw_harness.worker.wrangler import load_worker_config

from .conftest import CHAT_WORKER, ScriptedUpstream, needs_node, serve_scripted

# One Worker for the module (starting workerd takes seconds); tests that need a fresh one start their own.
pytestmark = [needs_node, pytest.mark.asyncio(loop_scope="module")]

SESSION = "11111111-1111-1111-1111-111111111111"
TENANT = {"x-tenant-id": "example"}
PRIMARY = "@cf/meta/llama-3.1-8b-instruct-fast"
FALLBACK = "@cf/meta/llama-3.1-8b-instruct-fp8-fast"
MODELS = {"MODEL_ID": PRIMARY, "FALLBACK_MODEL_ID": FALLBACK}
UNUSED_UPSTREAM = "http://127.0.0.1:9"  # for Workers that make no AI call in the test
NATIVE_STREAM = [
    'data: {"response":"Hel","p":"abc"}\n\n',
    'data: {"response":"lo"}\n\n',
    'data: {"response":"","usage":{"prompt_tokens":3,"completion_tokens":2,"total_tokens":5}}\n\n',
    "data: [DONE]\n\n",
]


@pytest_asyncio.fixture(loop_scope="module", scope="module")
async def shared() -> AsyncIterator[tuple[WorkerBridge, ScriptedUpstream]]:
    async with serve_scripted() as scripted:
        config = load_worker_config(CHAT_WORKER, "dev")
        async with WorkerBridge.running(config, scripted.url, extra_vars=MODELS) as bridge:
            yield bridge, scripted


@pytest_asyncio.fixture(loop_scope="module")
async def worker(shared: tuple[WorkerBridge, ScriptedUpstream]) -> WorkerBridge:
    bridge, scripted = shared
    await bridge.settle()
    bridge.clear_events()
    scripted.replies.clear()
    scripted.seen.clear()
    return bridge


@pytest.fixture
def scripted(shared: tuple[WorkerBridge, ScriptedUpstream], worker: WorkerBridge) -> ScriptedUpstream:
    return shared[1]


@pytest_asyncio.fixture(loop_scope="module")
async def client(worker: WorkerBridge) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=worker.url, headers=TENANT, timeout=20) as http:
        yield http


def events_of(body: bytes) -> list[tuple[str, str]]:
    decoder = SSEDecoder()
    events = decoder.feed(body) + decoder.flush()
    return [(event.event, event.data) for event in events]


async def test_streaming_chat_goes_through_the_binding_to_ai_gateway_run(
    worker: WorkerBridge, client: httpx.AsyncClient, scripted: ScriptedUpstream
) -> None:
    scripted.reply_sse(NATIVE_STREAM, **{"cf-aig-log-id": "01JTESTLOG", "cf-ai-req-id": "req-1"})
    response = await client.post("/chat", json={"sessionId": SESSION, "message": "hello"})
    assert response.status_code == 200
    assert response.headers["content-type"] == "text/event-stream"
    assert response.headers["x-aig-log-id"] == "01JTESTLOG"
    events = events_of(response.content)
    assert [e for e, _ in events] == ["message", "message", "done"]
    assert '"content":"Hel"' in events[0][1]
    assert '"totalTokens":5' in events[2][1]

    (sent,) = scripted.seen
    assert (sent.method, sent.path) == ("POST", "/ai-gateway/run?version=3")
    assert sent.headers["cf-consn-model-id"] == PRIMARY
    assert sent.headers["cf-consn-sdk-version"] == "2.0.0"
    assert sent.json() == {
        "inputs": {"messages": [{"role": "user", "content": "hello"}], "stream": True},
        "options": {
            "gateway": {
                "id": "example-gateway",
                "metadata": {"sessionId": SESSION, "route": "/chat", "tenantId": "example"},
                "requestTimeoutMs": 2000,
            }
        },
    }
    assert await worker.settle() == []


async def test_usage_lands_in_kv_and_history_in_the_durable_object(
    worker: WorkerBridge, client: httpx.AsyncClient, scripted: ScriptedUpstream
) -> None:
    scripted.reply_sse(NATIVE_STREAM)
    scripted.reply_json(
        {"response": "second", "usage": {"prompt_tokens": 7, "completion_tokens": 1, "total_tokens": 8}}
    )
    # Tenant alpha is used by this test alone in the module's shared Worker: its counters start at 0.
    alpha = {"x-tenant-id": "alpha"}
    await client.post("/chat", json={"sessionId": SESSION, "message": "hello"}, headers=alpha)
    second = {"sessionId": SESSION, "message": "again", "stream": False}
    response = await client.post("/chat", json=second, headers=alpha)
    assert response.json()["data"]["message"] == "second"
    daily, monthly = sorted(await worker.kv_list("USAGE", prefix="alpha:token-usage:"))
    assert (await worker.kv_get("USAGE", daily), await worker.kv_get("USAGE", monthly)) == ("13", "13")
    assert ":daily:" in daily
    # The second call carried the first exchange: the Durable Object kept the session.
    second_inputs = scripted.seen[1].json()
    assert isinstance(second_inputs, dict)
    assert [m["content"] for m in second_inputs["inputs"]["messages"]] == ["hello", "Hello", "again"]


async def test_kv_written_from_outside_is_seen_by_the_worker_and_back(worker: WorkerBridge) -> None:
    await worker.kv_put("USAGE", "k", "v")
    assert await worker.kv_get("USAGE", "k") == "v"
    await worker.kv_delete("USAGE", "k")
    assert await worker.kv_get("USAGE", "k") is None


async def test_binding_error_text_reaches_the_worker_and_it_falls_back(
    client: httpx.AsyncClient, scripted: ScriptedUpstream
) -> None:
    scripted.reply_json({"errors": [{"code": 3040, "message": "Capacity temporarily exceeded"}]}, status=429)
    scripted.reply_json(
        {"internalCode": 2045, "description": "Spend limit exceeded", "name": "AiGatewayError"}, status=429
    )
    response = await client.post("/chat", json={"sessionId": SESSION, "message": "x", "stream": False})
    assert response.status_code == 502
    assert response.json() == {
        "ok": False,
        "error": {"code": "ai_error", "message": "AI provider unavailable"},
    }
    # The fallback's error is the last one, as the binding words it.
    assert response.headers["x-ai-error"] == "AiGatewayError: 2045: Spend limit exceeded"
    assert [s.headers["cf-consn-model-id"] for s in scripted.seen] == [PRIMARY, FALLBACK]


async def test_json_with_charset_is_a_raw_stream_to_the_worker(
    client: httpx.AsyncClient, scripted: ScriptedUpstream
) -> None:
    scripted.reply_json({"response": "hi"}, **{"content-type": "application/json; charset=utf-8"})
    response = await client.post("/chat", json={"sessionId": SESSION, "message": "x", "stream": False})
    # The Worker got a ReadableStream, not an object: it has no `response` string to show.
    assert response.json()["data"]["message"] == "{}"


async def test_get_log_and_patch_log_through_the_gateway_methods(
    client: httpx.AsyncClient, scripted: ScriptedUpstream
) -> None:
    scripted.reply_json(
        {"result": {"id": "01L", "model": "m", "created_at": "2026-11-27T10:00:00Z", "cost": 0.5}}
    )
    scripted.reply_json(
        {"success": False, "errors": [{"code": 7002, "message": "Log not found"}]}, status=404
    )
    scripted.reply_json({"success": True, "result": {}})
    found = await client.get("/log/01L")
    assert found.json()["data"]["createdAtIsDate"] is True
    assert found.json()["data"]["cost"] == 0.5
    missing = await client.get("/log/01X")
    assert missing.status_code == 404
    assert missing.json()["error"] == {"code": "AiGatewayLogNotFound", "message": "Log not found"}
    patched = await client.patch("/log/01L", json={"feedback": 1})
    assert patched.json()["data"] == {"patched": "01L"}
    assert [(s.method, s.path) for s in scripted.seen] == [
        ("GET", "/ai-gateway/gateways/example-gateway/logs/01L"),
        ("GET", "/ai-gateway/gateways/example-gateway/logs/01X"),
        ("PATCH", "/ai-gateway/gateways/example-gateway/logs/01L"),
    ]


async def test_stubbed_binding_fails_clearly_and_is_reported(
    worker: WorkerBridge, client: httpx.AsyncClient
) -> None:
    response = await client.get("/search")
    assert response.status_code == 500
    assert "binding SEARCH_INDEX (vectorize) is not simulated" in response.text
    (problem,) = await worker.settle()
    assert problem.kind == "exception"
    assert problem.describe().startswith(
        "the Worker threw an uncaught exception on GET /search: aigw: binding"
    )


async def test_hung_request_is_cancelled_and_reported(
    worker: WorkerBridge, client: httpx.AsyncClient
) -> None:
    response = await client.get("/hang")
    assert response.status_code == 500
    assert "hung" in response.text
    (problem,) = await worker.settle()
    assert problem.kind == "hung"
    assert problem.describe().startswith("workerd cancelled GET /hang because the Worker hung")
    # The next request on the same pooled client is answered: no dead kept-alive connection is left.
    assert (await client.get("/health")).status_code == 200


async def test_vars_can_be_overridden_per_run() -> None:
    config = load_worker_config(CHAT_WORKER, "dev")
    async with (
        WorkerBridge.running(config, UNUSED_UPSTREAM, extra_vars={"MODEL_ID": "@cf/other"}) as bridge,
        httpx.AsyncClient(base_url=bridge.url, headers=TENANT) as http,
    ):
        health = (await http.get("/health")).json()["data"]
    assert health == {
        "status": "ok",
        "tenantId": "example",
        "environment": "dev",
        "modelId": "@cf/other",
        "fallbackModelId": "@cf/meta/llama-3.1-8b-instruct-fp8-fast",
    }


async def test_stopping_leaves_no_process_behind() -> None:
    async with WorkerBridge.running(load_worker_config(CHAT_WORKER, "dev"), UNUSED_UPSTREAM) as bridge:
        pid = bridge._process.pid
    assert bridge._process.returncode == 0
    # The runner led its own process group, workerd included: nothing of it is left.
    with pytest.raises(ProcessLookupError):
        os.killpg(pid, 0)


async def test_a_bundling_error_names_the_file_and_line(tmp_path: Path) -> None:
    (tmp_path / "index.js").write_text("export default {\n  fetch() { return new Response('x' }\n};\n")
    (tmp_path / "wrangler.jsonc").write_text('{"name": "broken", "main": "index.js"}')
    with pytest.raises(WorkerStartError) as info:
        async with WorkerBridge.running(load_worker_config(tmp_path), UNUSED_UPSTREAM):
            pytest.fail("the Worker should not start")
    message = str(info.value)
    assert "bundling" in message
    assert f"{tmp_path / 'index.js'}:2:" in message


async def test_define_and_alias_reach_the_bundle(tmp_path: Path) -> None:
    (tmp_path / "index.js").write_text(
        'import greeting from "greeting";\n'
        "export default { fetch() { return new Response(greeting + ' ' + BUILD_LABEL); } };\n"
    )
    (tmp_path / "shim.js").write_text('export default "hello";\n')
    (tmp_path / "wrangler.jsonc").write_text(
        '{"name": "d", "main": "index.js", "define": {"BUILD_LABEL": "\\"dev-build\\""},'
        ' "alias": {"greeting": "./shim.js"}}'
    )
    async with (
        WorkerBridge.running(load_worker_config(tmp_path), UNUSED_UPSTREAM) as bridge,
        httpx.AsyncClient(base_url=bridge.url) as http,
    ):
        assert (await http.get("/")).text == "hello dev-build"


CLOCK_WORKER = """
import { DurableObject } from "cloudflare:workers";
export class Clock extends DurableObject {
  async fetch() { return new Response(new Date().toISOString()); }
}
export default {
  async fetch(request, env) {
    const fromObject = await (await env.CLOCK.get(env.CLOCK.idFromName("x")).fetch(request)).text();
    const now = new Date(Date.now());
    return Response.json({ worker: new Date().toISOString(), now: now.toISOString(), fromObject,
      isDate: now instanceof Date, called: typeof Date(), utc: Date.UTC(2026, 0, 1) });
  },
};
"""


async def test_the_workers_clock_moves_for_the_worker_and_its_durable_objects(tmp_path: Path) -> None:
    (tmp_path / "index.js").write_text(CLOCK_WORKER)
    (tmp_path / "wrangler.jsonc").write_text(
        '{"name": "c", "main": "index.js",'
        ' "durable_objects": {"bindings": [{"name": "CLOCK", "class_name": "Clock"}]},'
        ' "migrations": [{"tag": "v1", "new_sqlite_classes": ["Clock"]}]}'
    )
    async with (
        WorkerBridge.running(load_worker_config(tmp_path), UNUSED_UPSTREAM) as bridge,
        httpx.AsyncClient(base_url=bridge.url) as http,
    ):
        before = (await http.get("/")).json()
        await bridge.set_clock_offset(
            -(datetime.now(UTC) - datetime(2026, 1, 31, 23, 59, 59, tzinfo=UTC)).total_seconds()
        )
        after = (await http.get("/", headers={"x-aigw-clock-token": "a guess"})).json()
    assert before["worker"][:4] == str(datetime.now(UTC).year)
    for key in ("worker", "now", "fromObject"):
        assert after[key].startswith("2026-01-31T23:59:5") or after[key].startswith("2026-02-01T00:00:0"), (
            after
        )
    assert after["isDate"] is True
    assert after["called"] == "string"
    assert after["utc"] == 1767225600000


BROKEN_STREAM_WORKER = """
export default {
  fetch() {
    let sent = false;
    const body = new ReadableStream({
      pull(controller) {
        if (sent) return controller.error(new Error("the body broke after one chunk"));
        sent = true;
        controller.enqueue(new TextEncoder().encode("data: first\\n\\n"));
      },
    });
    return new Response(body, { headers: { "content-type": "text/event-stream" } });
  },
};
"""


async def test_a_response_stream_that_fails_mid_way_is_reported(tmp_path: Path) -> None:
    (tmp_path / "index.js").write_text(BROKEN_STREAM_WORKER)
    (tmp_path / "wrangler.jsonc").write_text('{"name": "broken-stream", "main": "index.js"}')
    async with (
        WorkerBridge.running(load_worker_config(tmp_path), UNUSED_UPSTREAM) as bridge,
        httpx.AsyncClient(base_url=bridge.url) as http,
    ):
        with contextlib.suppress(httpx.HTTPError):  # the client sees the body cut short
            async with http.stream("GET", "/events") as response:
                async for _ in response.aiter_raw():
                    pass
        (problem,) = await bridge.settle()
    assert problem.kind == "stream-error"
    assert problem.describe().startswith("the response body of GET /events failed mid-stream: ")
    assert "the body broke after one chunk" in problem.describe()


async def test_an_error_inside_the_context_is_the_callers_own() -> None:
    with pytest.raises(TimeoutError, match="the caller's own timeout"):
        async with WorkerBridge.running(load_worker_config(CHAT_WORKER, "dev"), UNUSED_UPSTREAM):
            raise TimeoutError("the caller's own timeout")


WAIT_UNTIL_WORKER = Path(__file__).parent / "fixtures" / "wait-until" / "wrangler.jsonc"


@needs_node
async def test_wait_until_work_outlives_a_client_disconnect() -> None:
    """Cloudflare keeps a request's ctx.waitUntil work running for up to 30 s after the client
    disconnects; the bridge must not cut it short, or usage written after a disconnect is never seen."""
    config = load_worker_config(WAIT_UNTIL_WORKER)
    async with WorkerBridge.running(config, "http://127.0.0.1:9") as worker:
        async with (
            httpx.AsyncClient(timeout=10) as client,
            client.stream("POST", f"{worker.url}/", content=b"{}") as response,
        ):
            async for _ in response.aiter_bytes():
                break  # one chunk, then the client goes away
        for _ in range(100):
            if await worker.kv_get("STATE", "finished") is not None:
                break
            await asyncio.sleep(0.05)
        sent = await worker.kv_get("STATE", "sent")
        assert await worker.kv_get("STATE", "finished") == "yes"
        # The Worker's writes failed when the client left (the stream was cut); its waitUntil work was not.
        assert sent is not None
        assert int(sent) < 50


@needs_node
async def test_a_package_the_worker_imports_but_nobody_installed_is_named(tmp_path: Path) -> None:
    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "index.js").write_text(
        'import pad from "aigw-absent-package";\nexport default { fetch: () => new Response(pad("x")) };\n'
    )
    (tmp_path / "wrangler.jsonc").write_text(
        '{"name": "w", "main": "src/index.js", "compatibility_date": "2026-02-01", "ai": {"binding": "AI"}}'
    )
    with pytest.raises(WorkerStartError) as info:
        async with WorkerBridge.running(load_worker_config(tmp_path), "http://127.0.0.1:9"):
            pass
    message = str(info.value)
    assert 'Could not resolve "aigw-absent-package"' in message
    assert "the Worker's own packages are not installed (aigw-absent-package): run 'npm install'" in message


@needs_node
async def test_a_durable_object_the_bundle_exports_is_simulated_whatever_its_script_name(
    tmp_path: Path,
) -> None:
    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "index.js").write_text(
        'import { DurableObject } from "cloudflare:workers";\n'
        "export class Counter extends DurableObject {\n"
        "  async fetch() {\n"
        '    const n = ((await this.ctx.storage.get("n")) ?? 0) + 1;\n'
        '    await this.ctx.storage.put("n", n);\n'
        "    return new Response(String(n));\n"
        "  }\n"
        "}\n"
        "export default {\n"
        '  fetch: (request, env) => env.COUNTER.get(env.COUNTER.idFromName("a")).fetch(request),\n'
        "};\n"
    )
    # The binding names another Worker (as an environment's renamed Worker often does), but this bundle
    # exports the class itself.
    (tmp_path / "wrangler.jsonc").write_text(
        '{"name": "w", "main": "src/index.js", "compatibility_date": "2026-02-01", "ai": {"binding": "AI"},'
        ' "migrations": [{"tag": "v1", "new_sqlite_classes": ["Counter"]}],'
        ' "durable_objects": {"bindings":'
        ' [{"name": "COUNTER", "class_name": "Counter", "script_name": "w-prod"}]}}'
    )
    async with (
        WorkerBridge.running(load_worker_config(tmp_path), "http://127.0.0.1:9") as worker,
        httpx.AsyncClient(timeout=10) as client,
    ):
        counts = [(await client.get(f"{worker.url}/")).text for _ in range(2)]
        assert await worker.settle() == []
    assert counts == ["1", "2"]
