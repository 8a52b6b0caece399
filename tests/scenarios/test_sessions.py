"""Session checks through the runner and the url target, against a small deployment whose history route
takes each documented shape and order (and one that stores what it must not); and reading history documents,
property-tested."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from aigw_fakes.datafiles import parse_model
from aigw_harness.report.results import ScenarioResult
from aigw_harness.scenarios.model import Scenario
from aigw_harness.scenarios.runner import RunOptions, run_scenario
from aigw_harness.scenarios.sessions import messages_of
from tests.loopback import loopback_server

SESSION = "22222222-2222-4222-8222-222222222222"

SCENARIO = parse_model(
    f"""
id: t.sessions
title: a refused turn stays out of the session
area: accounting
description: d
steps:
  - name: turn
    request: {{tenant: t1, session: {SESSION}, message: hello, stream: false}}
    expect: {{status: 200}}
  - name: refused
    request: {{tenant: t1, session: {SESSION}, message: refuse me, stream: false}}
    expect: {{status: 429}}
checks:
  - id: stored
    description: the admitted turn, question then answer, and nothing of the refused one
    session:
      tenant: t1
      session: {SESSION}
      messages: [{{role: user, content: hello}}, {{role: assistant, content: "answer to hello"}}]
findings:
  - {{id: REFUSED-STORED, title: t, severity: medium, evidence: [stored], recommendation: r}}
""",
    Scenario,
)


@dataclass
class Deployment:
    """A chat deployment in a few lines: answers every admitted message, refuses "refuse me" with 429, and
    serves its history in one of the contract's shapes and orders."""

    shape: str = "data.messages"
    newest_first: bool = False
    timestamps: bool = True
    store_refused: bool = False
    route_status: int = 200
    sessions: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    clock: int = 1_770_000_000_000
    url: str = ""

    def _store(self, key: str, role: str, content: str) -> None:
        self.clock += 5
        message: dict[str, Any] = {"role": role, "content": content}
        if self.timestamps:
            message["timestamp"] = self.clock
        self.sessions.setdefault(key, []).append(message)

    def _history(self, key: str) -> Any:
        messages = list(self.sessions.get(key, []))
        if self.newest_first:
            messages.reverse()
        shapes: dict[str, Any] = {
            "data.messages": {"ok": True, "data": {"sessionId": key, "messages": messages}},
            "data": {"ok": True, "data": messages},
            "messages": {"messages": messages},
            "history": {"sessionId": key, "history": messages},
            "list": messages,
        }
        return shapes[self.shape]

    def answer(self, method: str, path: str, headers: dict[str, str], body: bytes) -> tuple[int, Any]:
        tenant = headers.get("x-tenant-id", "")
        if method == "POST" and path == "/chat":
            request = json.loads(body)
            key = f"{tenant}:{request['sessionId']}"
            if request["message"] == "refuse me":
                if self.store_refused:
                    self._store(key, "user", request["message"])
                return 429, {"ok": False, "error": {"code": "budget_exceeded", "message": "refused"}}
            self._store(key, "user", request["message"])
            self._store(key, "assistant", f"answer to {request['message']}")
            return 200, {"ok": True, "data": {"status": "accepted", "message": "answer"}}
        if method == "GET" and path.startswith("/__sessions/"):
            _, _, who, session = path.split("/")
            return 200, self.sessions.get(f"{who}:{session}", [])
        if method == "GET" and path.endswith("/history"):
            if self.route_status != 200:
                return self.route_status, {"ok": False, "error": {"code": "internal", "message": "broken"}}
            return 200, self._history(f"{tenant}:{path.split('/')[2]}")
        return 404, {"ok": False, "error": {"code": "not_found", "message": "Not found"}}

    async def serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            head = (await reader.readuntil(b"\r\n\r\n")).decode("latin-1").split("\r\n")
            method, path, _ = head[0].split(" ", 2)
            headers = {k.strip().lower(): v.strip() for k, _, v in (h.partition(":") for h in head[1:] if h)}
            body = await reader.readexactly(int(headers.get("content-length", "0")))
            status, document = self.answer(method, path, headers, body)
            payload = json.dumps(document).encode()
            writer.write(
                f"HTTP/1.1 {status} X\r\ncontent-type: application/json\r\ncontent-length: {len(payload)}\r\n"
                "connection: close\r\n\r\n".encode()
                + payload
            )
            await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()


@contextlib.asynccontextmanager
async def deployed(deployment: Deployment) -> AsyncIterator[Deployment]:
    async with loopback_server(deployment.serve) as url:
        deployment.url = url
        yield deployment


async def run_on(deployment: Deployment, **extra: str) -> ScenarioResult:
    async with deployed(deployment) as sut:
        filled = {k: v.replace("SUT", sut.url) for k, v in extra.items()}
        return await run_scenario(SCENARIO, RunOptions(target="url", sut_url=sut.url, extra=filled))


def stored_check(result: ScenarioResult) -> Any:
    (check,) = [c for c in result.checks if c.id == "stored"]
    return check


@pytest.mark.parametrize("shape", ["data.messages", "data", "messages", "history", "list"])
@pytest.mark.parametrize("newest_first", [False, True])
async def test_every_documented_shape_and_order_of_the_history_route_passes(
    shape: str, newest_first: bool
) -> None:
    result = await run_on(Deployment(shape=shape, newest_first=newest_first))
    check = stored_check(result)
    assert (check.status, check.reason) == ("passed", ""), check.observed
    assert check.observed["order"] == "oldest first"  # the timestamps said which end is the newest
    assert check.observed["source"] == f"the history route GET /chat/{SESSION}/history"
    assert result.status == "passed"


async def test_without_timestamps_a_newest_first_history_is_read_reversed() -> None:
    result = await run_on(Deployment(newest_first=True, timestamps=False))
    check = stored_check(result)
    assert check.status == "passed"
    assert check.observed["order"] == "newest first (read reversed)"


@pytest.mark.parametrize("newest_first", [False, True])
@pytest.mark.parametrize("timestamps", [False, True])
async def test_a_deployment_that_stores_the_refused_turn_fails(newest_first: bool, timestamps: bool) -> None:
    deployment = Deployment(store_refused=True, newest_first=newest_first, timestamps=timestamps)
    result = await run_on(deployment)
    check = stored_check(result)
    assert check.status == "failed"
    assert check.reason.startswith("3 stored messages, expected 2")
    assert [f.id for f in result.findings if f.raised] == ["REFUSED-STORED"]


async def test_a_state_probe_is_read_instead_of_the_route() -> None:
    broken_route = Deployment(route_status=500)
    failed = stored_check(await run_on(broken_route))
    assert failed.status == "failed"
    assert failed.reason.startswith(
        f"the stored session could not be read: the history route GET /chat/{SESSION}"
    )
    probed = stored_check(
        await run_on(Deployment(route_status=500), sessions_url="SUT/__sessions/{tenant}/{session}")
    )
    assert probed.status == "passed", probed.reason
    assert probed.observed["source"].startswith("the state probe http://127.0.0.1:")
    assert probed.observed["source"].endswith(f"/__sessions/t1/{SESSION}")


# --- reading history documents ----------------------------------------------------------------------------

_MESSAGE = st.fixed_dictionaries(
    {"role": st.sampled_from(["user", "assistant", "system"]), "content": st.text(max_size=20)}
)
_WRAPS: dict[str, Callable[[list[Any]], Any]] = {
    "data.messages": lambda m: {"ok": True, "data": {"sessionId": "s", "messages": m}},
    "data.history": lambda m: {"ok": True, "data": {"history": m}},
    "data": lambda m: {"ok": True, "data": m},
    "messages": lambda m: {"messages": m},
    "history": lambda m: {"history": m},
    "list": lambda m: m,
}


@given(
    messages=st.lists(_MESSAGE, min_size=2, max_size=8),
    start=st.integers(min_value=0, max_value=2**40),
    steps=st.lists(st.integers(min_value=1, max_value=10**6), min_size=8, max_size=8),
    field_name=st.sampled_from(["timestamp", "createdAt", "ts"]),
    wrap=st.sampled_from(sorted(_WRAPS)),
    newest_first=st.booleans(),
)
def test_timestamps_give_the_oldest_first_order_in_every_shape(
    messages: list[dict[str, Any]],
    start: int,
    steps: list[int],
    field_name: str,
    wrap: str,
    newest_first: bool,
) -> None:
    times = [start + sum(steps[: i + 1]) for i in range(len(messages))]
    stamped = [{**m, field_name: t} for m, t in zip(messages, times, strict=False)]
    served = stamped[::-1] if newest_first else stamped
    assert messages_of(_WRAPS[wrap](served)) == (stamped, "oldest_first")


@given(messages=st.lists(_MESSAGE, max_size=8), wrap=st.sampled_from(sorted(_WRAPS)))
def test_without_timestamps_the_order_is_unknown_and_kept(messages: list[dict[str, Any]], wrap: str) -> None:
    assert messages_of(_WRAPS[wrap](messages)) == (messages, "unknown")


@given(
    document=st.one_of(
        st.none(), st.integers(), st.text(), st.dictionaries(st.text(max_size=5), st.integers())
    )
)
def test_a_document_without_a_list_of_messages_is_refused(document: Any) -> None:
    assert messages_of(document) is None
    assert messages_of({"ok": True, "data": {"messages": ["not a message"]}}) is None
