"""The Logs API: list, get, patch and delete a gateway's logs, and read their stored request and response.

Routes (under ``/client/v4/accounts/{account_id}/ai-gateway/gateways/{gateway_id}``):
- ``GET /logs``: ``page``, ``per_page``, ``order_by``, ``order_by_direction``, ``search``, ``filters``
  (JSON), ``meta_info``, ``start_date``/``end_date`` and the deprecated flat parameters
  (``aigw_fakes.api.logfilters``), answered in the v4 envelope with ``result_info`` (``count``, ``page``,
  ``per_page``, ``total_count``; the min/max figures with ``meta_info=true``);
- ``DELETE /logs``: ``filters``, ``limit``, ``order_by``, ``order_by_direction``; answers ``success``;
- ``GET /logs/{id}``: the log with sizes and heads; ``PATCH /logs/{id}``: ``feedback`` (-1, 0, 1 or null),
  ``score`` (a number or null) and ``metadata`` (an object, stored by the metadata rules, or null);
- ``GET /logs/{id}/request``, ``GET /logs/{id}/response``: the stored payloads as they were sent (404
  when ``cf-aig-collect-log-payload: false`` kept them out).

Logs are the request store's records (``aigw_fakes.state.logs``); deleting a log removes its record. A log
read too soon after its request (``FeatureOptions.log_visibility_delay``) is "not found". Bad parameters are
answered 400 with code 7001 and a message naming the parameter.

A gateway's ``log_management`` caps how many logs it keeps: at the cap, ``log_management_strategy``
``STOP_INSERTING`` (the default) stores no new logs and ``DELETE_OLDEST`` drops the oldest to make room
(the ``log_management`` pipeline stage, right after authentication, so refused requests count too).
"""

from __future__ import annotations

import json
from typing import Any

from aigw_fakes.api.common import API_BASE, bad_request, envelope, not_found, require_token
from aigw_fakes.api.logfilters import (
    LogQuery,
    LogQueryError,
    matches,
    order_logs,
    page_logs,
    parse_log_query,
    summary_stats,
)
from aigw_fakes.gateway.metadata import parse_metadata
from aigw_fakes.gateway.pipeline import GatewayCall, Next
from aigw_fakes.hardened_http import loads_strict
from aigw_fakes.parts import FakeParts
from aigw_fakes.state.fake import FakeState
from aigw_fakes.state.logs import GatewayLog, LogVisibility, log_of, visible_logs
from aigw_fakes.state.store import RequestRecord
from aigw_fakes.wire.errors import CloudflareError
from aigw_fakes.wire.http import IncomingRequest, Reply, json_reply

__all__ = ["LogReader", "install", "log_management_stage", "patch_record"]

LOG_NOT_FOUND = "Log not found"


class LogReader:
    """Reads one fake's logs with its current visibility options; shared by the REST API and the binding."""

    def __init__(self, state: FakeState) -> None:
        self.state = state

    @property
    def visibility(self) -> LogVisibility:
        options = self.state.features.options
        return LogVisibility(options.log_visibility_delay, options.log_head_delay)

    def records(self, account_id: str, gateway_id: str) -> list[RequestRecord]:
        return visible_logs(
            self.state.store, account_id, gateway_id, self.state.clock.time(), self.visibility
        )

    def find(self, account_id: str, gateway_id: str, log_id: str) -> RequestRecord | None:
        for record in self.records(account_id, gateway_id):
            if record.id == log_id:
                return record
        return None

    def render(self, log: GatewayLog, *, detail: bool = False) -> dict[str, Any]:
        as_text = self.state.features.options.log_metadata == "text"
        return log.to_json(self.state.clock.time(), detail=detail, metadata_as_text=as_text)

    def view(self, record: RequestRecord, sequence: int = 0) -> GatewayLog:
        return log_of(record, self.visibility.head_delay, sequence)

    def select(
        self, account_id: str, gateway_id: str, query: LogQuery
    ) -> list[tuple[GatewayLog, RequestRecord]]:
        by_id = {r.id: r for r in self.records(account_id, gateway_id)}
        views = (self.view(record, sequence) for sequence, record in enumerate(by_id.values()))
        chosen = [log for log in views if matches(log, query)]
        return [(log, by_id[log.id]) for log in order_logs(chosen, query)]


def patch_record(record: RequestRecord, body: Any) -> None:
    """Apply a PATCH body (``feedback``, ``score``, ``metadata``); errors name the field."""
    if not isinstance(body, dict):
        raise bad_request(7001, "body: expected a JSON object with feedback, score or metadata")
    if "feedback" in body:
        feedback = body["feedback"]
        if feedback is not None and (isinstance(feedback, bool) or feedback not in (-1, 0, 1)):
            raise bad_request(7001, f"feedback: expected -1, 0, 1 or null, got {json.dumps(feedback)}")
    if "score" in body:
        score = body["score"]
        if score is not None and (isinstance(score, bool) or not isinstance(score, int | float)):
            raise bad_request(7001, f"score: expected a number or null, got {json.dumps(score)}")
    if "metadata" in body and body["metadata"] is not None and not isinstance(body["metadata"], dict):
        raise bad_request(7001, "metadata: expected an object of strings, numbers and booleans, or null")
    if "feedback" in body:
        record.feedback = None if body["feedback"] is None else int(body["feedback"])
    if "score" in body:
        record.score = None if body["score"] is None else float(body["score"])
    if "metadata" in body:
        metadata = body["metadata"]
        record.metadata = None if metadata is None else parse_metadata(json.dumps(metadata))


def _query(request: IncomingRequest, *, for_delete: bool) -> LogQuery:
    try:
        return parse_log_query(request.query, items=request.query.multi_items(), for_delete=for_delete)
    except LogQueryError as exc:
        raise CloudflareError.of("invalid_logs_filter", detail=exc.message) from None


def _payload(body: bytes, content_type: str | None) -> Reply:
    if content_type and content_type.startswith("application/json"):
        try:
            return json_reply(200, loads_strict(body))
        except ValueError:
            pass
    return Reply(200, [("content-type", content_type or "application/octet-stream")], body)


async def log_management_stage(call: GatewayCall, call_next: Next) -> Reply:
    record, gateway = call.record, call.gateway
    cap = gateway.settings.log_management if gateway is not None else None
    if record is None or gateway is None or cap is None or not record.logged:
        return await call_next(call)
    kept = [
        r.id
        for r in call.state.store
        if r is not record and r.logged and r.account_id == gateway.account_id and r.gateway_id == gateway.id
    ]
    if len(kept) >= cap:
        if gateway.settings.log_management_strategy == "DELETE_OLDEST":
            call.state.store.remove(set(kept[: len(kept) - cap + 1]))
        else:
            record.logged = False
    return await call_next(call)


def install(parts: FakeParts) -> None:
    state = parts.state
    reader = LogReader(state)
    parts.pipeline.insert_after("authenticate", "log_management", log_management_stage)

    def gateway_of(request: IncomingRequest) -> tuple[str, str]:
        account_id = require_token(state, request)
        gateway_id = request.params["gateway"]
        if state.gateways.get(account_id, gateway_id) is None:
            raise not_found(2001, "gateway does not exist")
        return account_id, gateway_id

    def record_of(request: IncomingRequest) -> RequestRecord:
        account_id, gateway_id = gateway_of(request)
        record = reader.find(account_id, gateway_id, request.params["log"])
        if record is None:
            raise not_found(7002, LOG_NOT_FOUND)
        return record

    async def list_logs(request: IncomingRequest) -> Reply:
        account_id, gateway_id = gateway_of(request)
        query = _query(request, for_delete=False)
        selected = [log for log, _ in reader.select(account_id, gateway_id, query)]
        page = page_logs(selected, query)
        info: dict[str, Any] = {
            "count": len(page.items),
            "page": query.page,
            "per_page": query.per_page,
            "total_count": page.total_count,
        }
        if query.meta_info:
            info |= summary_stats(selected)
        return envelope([reader.render(log) for log in page.items], result_info=info)

    async def delete_logs(request: IncomingRequest) -> Reply:
        account_id, gateway_id = gateway_of(request)
        query = _query(request, for_delete=True)
        doomed = [record.id for _, record in reader.select(account_id, gateway_id, query)]
        if query.limit is not None:
            doomed = doomed[: query.limit]
        state.store.remove(set(doomed))
        return json_reply(200, {"success": True, "result": None, "errors": [], "messages": []})

    async def get_log(request: IncomingRequest) -> Reply:
        record = record_of(request)
        return envelope(reader.render(reader.view(record), detail=True))

    async def patch_log(request: IncomingRequest) -> Reply:
        record = record_of(request)
        try:
            body = request.json()
        except ValueError:
            raise bad_request(7001, "body: not valid JSON") from None
        patch_record(record, body)
        return envelope(reader.render(reader.view(record), detail=True))

    async def log_request(request: IncomingRequest) -> Reply:
        record = record_of(request)
        if not record.log_payload:
            raise not_found(7002, "The request payload was not collected for this log")
        return _payload(record.request_body, record.request_content_type)

    async def log_response(request: IncomingRequest) -> Reply:
        record = record_of(request)
        if not record.log_payload:
            raise not_found(7002, "The response payload was not collected for this log")
        return _payload(record.response_body, record.response_content_type)

    logs = f"{API_BASE}/gateways/(?P<gateway>[^/]+)/logs"
    one = f"{logs}/(?P<log>[^/]+)"
    parts.router.add(["GET"], logs, list_logs, "api logs list")
    parts.router.add(["DELETE"], logs, delete_logs, "api logs delete")
    parts.router.add(["GET"], one, get_log, "api log get")
    parts.router.add(["PATCH"], one, patch_log, "api log patch")
    parts.router.add(["GET"], f"{one}/request", log_request, "api log request")
    parts.router.add(["GET"], f"{one}/response", log_response, "api log response")
