"""A scripted stand-in for AI Gateway's Workers AI endpoint, plugged in through ``httpx.MockTransport``.

Used where a test needs what the fake cannot script or where a unit test wants no server at all; every
behaviour the fake supports is tested against the fake as well.
"""

from __future__ import annotations

import asyncio
import json
from collections import defaultdict, deque
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import httpx


@dataclass
class Reply:
    """One scripted answer."""

    tokens: list[str] = field(default_factory=lambda: ["Hel", "lo"])
    shape: str = "native"  # "native" or "chat"
    usage: dict[str, Any] | None = field(
        default_factory=lambda: {"prompt_tokens": 5, "completion_tokens": 2, "total_tokens": 7}
    )
    terminate: bool = True  # send [DONE]
    status: int = 200
    error_body: dict[str, Any] | None = None
    head_delay: float = 0.0
    token_delay: float = 0.0
    stall_after: int | None = None  # wait `stall` seconds before the token with this index
    stall: float = 0.0
    fail_after: int | None = None  # break the connection after this many tokens
    error_frame_after: int | None = None  # send an error frame after this many tokens
    log_id: str = "01JADMCQQQBWH3NXZ5GCRN98DP"


def native_frames(reply: Reply) -> list[bytes]:
    frames = [f"data: {json.dumps({'response': t, 'p': 'abc'})}\n\n".encode() for t in reply.tokens]
    frames.append(b'data: {"response":""}\n\n')
    if reply.usage is not None:
        frames.append(f"data: {json.dumps({'response': '', 'usage': reply.usage})}\n\n".encode())
    return frames


def chat_frames(reply: Reply) -> list[bytes]:
    frames = []
    for token in reply.tokens:
        chunk = {
            "object": "chat.completion.chunk",
            "choices": [{"index": 0, "delta": {"content": token}, "finish_reason": None}],
            "usage": {"prompt_tokens": 0, "completion_tokens": 1, "total_tokens": 1},
        }
        frames.append(f"data: {json.dumps(chunk)}\n\n".encode())
    final = {"choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}], "usage": {"prompt_tokens": 9}}
    frames.append(f"data: {json.dumps(final)}\n\n".encode())
    if reply.usage is not None:
        frames.append(f"data: {json.dumps({'response': '', 'usage': reply.usage})}\n\n".encode())
    return frames


class ScriptedUpstream:
    """Replies per model, in order; the last reply for a model repeats. Records every request."""

    def __init__(self) -> None:
        self.replies: dict[str, deque[Reply]] = defaultdict(deque)
        self.default = Reply()
        self.requests: list[httpx.Request] = []
        self.closed: list[str] = []  # models whose stream the client closed early
        self.finished: list[str] = []

    def script(self, model: str, *replies: Reply) -> None:
        self.replies[model].extend(replies)

    def transport(self) -> httpx.MockTransport:
        return httpx.MockTransport(self.handle)

    def bodies(self) -> list[dict[str, Any]]:
        return [json.loads(r.content) for r in self.requests]

    def models(self) -> list[str]:
        return [r.url.path.split("/workers-ai/", 1)[1] for r in self.requests]

    def _next(self, model: str) -> Reply:
        queue = self.replies.get(model)
        if not queue:
            return self.default
        return queue.popleft() if len(queue) > 1 else queue[0]

    async def handle(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        model = request.url.path.split("/workers-ai/", 1)[1]
        reply = self._next(model)
        if reply.head_delay:
            await asyncio.sleep(reply.head_delay)
        headers = {"cf-aig-log-id": reply.log_id, "cf-aig-step": "0"}
        if reply.status != 200:
            return httpx.Response(reply.status, headers=headers, json=reply.error_body or {})
        body = json.loads(request.content)
        if not body.get("stream"):
            result: dict[str, Any] = {"response": "".join(reply.tokens)}
            if reply.usage is not None:
                result["usage"] = reply.usage
            envelope = {"result": result, "success": True, "errors": [], "messages": []}
            return httpx.Response(200, headers=headers, json=envelope)
        frames = native_frames(reply) if reply.shape == "native" else chat_frames(reply)
        return httpx.Response(
            200,
            headers={**headers, "content-type": "text/event-stream"},
            content=self._stream(model, reply, frames),
        )

    async def _stream(self, model: str, reply: Reply, frames: list[bytes]) -> AsyncIterator[bytes]:
        try:
            for index, frame in enumerate(frames):
                if reply.fail_after is not None and index == reply.fail_after:
                    raise httpx.RemoteProtocolError("peer closed connection")
                if reply.error_frame_after is not None and index == reply.error_frame_after:
                    yield b'data: {"errors":[{"code":3040,"message":"Capacity temporarily exceeded"}]}\n\n'
                    return
                if reply.stall_after is not None and index == reply.stall_after:
                    await asyncio.sleep(reply.stall)
                if index < len(reply.tokens) and reply.token_delay:
                    await asyncio.sleep(reply.token_delay)
                yield frame
            if reply.terminate:
                yield b"data: [DONE]\n\n"
            self.finished.append(model)
        except (asyncio.CancelledError, GeneratorExit):
            self.closed.append(model)
            raise
