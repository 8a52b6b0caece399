"""The ``/__aigw/`` control API: script the fake from another process.

- ``PUT /__aigw/behaviour``: load a behaviour document (JSON or YAML body, at most
  ``FakeConfig.max_control_body_bytes``); 400 lists every problem with its field (and line, for YAML),
  whatever the parser meets; it is parsed off the event loop, so a slow document does not stall the fake;
- ``GET /__aigw/behaviour``: the loaded document and each rule's call count;
- ``POST /__aigw/reset``: behaviour, store, counters, gateways, caches and limits back to the start;
- ``GET /__aigw/requests``: the request store as JSON (``?bodies=false`` leaves bodies out).

Answers use the v4 envelope (``{"success", "result", "errors"}``) so one client reads everything. The
per-request ``x-aigw-behaviour`` header is read by the model endpoints, not here.
"""

from __future__ import annotations

import asyncio
from dataclasses import asdict

from aigw_fakes.behaviour import parse_document
from aigw_fakes.datafiles import DataFileError
from aigw_fakes.parts import FakeParts
from aigw_fakes.wire.http import IncomingRequest, Reply, json_reply

__all__ = ["install"]


def _problems(exc: DataFileError) -> Reply:
    return json_reply(
        400,
        {
            "success": False,
            "result": None,
            "errors": [{"code": 400, "message": str(exc)}],
            "problems": [asdict(p) for p in exc.problems],
        },
    )


def install(parts: FakeParts) -> None:
    state = parts.state

    async def put_behaviour(request: IncomingRequest) -> Reply:
        try:
            text = request.body.decode("utf-8")
            document = await asyncio.to_thread(parse_document, text)
        except UnicodeDecodeError:
            return json_reply(
                400, {"success": False, "result": None, "errors": [{"code": 400, "message": "not UTF-8"}]}
            )
        except DataFileError as exc:
            return _problems(exc)
        state.behaviour.load(document)
        return json_reply(
            200,
            {"success": True, "result": document.model_dump(mode="json", exclude_unset=True), "errors": []},
        )

    async def get_behaviour(request: IncomingRequest) -> Reply:
        document = state.behaviour.document.model_dump(mode="json", exclude_unset=True)
        return json_reply(
            200,
            {"success": True, "result": {"document": document, "calls": state.behaviour.calls}, "errors": []},
        )

    async def reset(request: IncomingRequest) -> Reply:
        state.reset()
        return json_reply(200, {"success": True, "result": None, "errors": []})

    async def requests(request: IncomingRequest) -> Reply:
        bodies = request.query.get("bodies", "true").lower() != "false"
        records = [r.to_json(include_bodies=bodies) for r in state.store]
        return json_reply(200, {"success": True, "result": records, "errors": []})

    limit = state.config.max_control_body_bytes
    parts.router.add(["PUT"], "/__aigw/behaviour", put_behaviour, "control behaviour put", limit)
    parts.router.add(["GET"], "/__aigw/behaviour", get_behaviour, "control behaviour get", limit)
    parts.router.add(["POST"], "/__aigw/reset", reset, "control reset", limit)
    parts.router.add(["GET"], "/__aigw/requests", requests, "control requests", limit)
