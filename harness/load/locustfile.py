"""A Locust user speaking the platform's ``/chat`` contract, for ``aigw load`` and your own Locust runs.

    locust -f "$(python -c 'import aigw_harness.load.locustfile as m; print(m.__file__)')" \\
        --host http://127.0.0.1:8788 --headless -u 100 -r 20 -t 60s

or, in a locustfile of your own, ``from aigw_harness.load.locustfile import ChatUser`` (subclass it to change
the profile or add tasks). The profile comes from the ``AIGW_LOAD_PROFILE`` environment variable (a profile
YAML file; see ``aigw_harness.load.profile``); without it, every request is one streamed "hello" to tenant
``example``.

Every answer is measured as it arrives and reported to Locust's own event hook, so Locust's statistics,
CSV files, web UI and distributed aggregation work unchanged. Per answer:

| request type | name | response time | length | failure |
|---|---|---|---|---|
| ``SSE`` / ``JSON`` | ``/chat`` | whole answer (ms) | tokens received | error class (``HTTP 429 ...``) |
| ``TTFT`` | ``/chat`` | time to first token (ms) | | |
| ``GAP`` | ``/chat max inter-token gap`` | the answer's longest gap between tokens (ms) | | |
| ``ERROR`` | the error class | 0 | | (counts each incomplete answer by class) |
| ``CONTRACT`` | ``/chat``, or the first broken rule | 0 | | the broken rule and what was seen |

The ``SSE``/``JSON`` rows count every answer exactly once; the ``ERROR`` rows split their failures by class,
so that Locust's final statistics (which a master aggregates over its workers) carry the errors by class.

Locust runs on gevent, so this module must stay free of asyncio: it reads the response with ``requests``
(chunk by chunk as the server writes them) and judges it with ``aigw_harness.load.stream``.
"""

from __future__ import annotations

import os
import time
import uuid
from typing import Any

import gevent
import requests
from locust import User, events, task
from locust.env import Environment
from locust.runners import WORKER_REPORT_INTERVAL, MasterRunner

from aigw_harness.load.profile import Draw, LoadProfile, load_profile
from aigw_harness.load.stream import Answer, AnswerRecorder, outcome_class

__all__ = ["ChatUser", "LoadFailure"]

PROFILE_ENV = "AIGW_LOAD_PROFILE"
MASTER_DURATION_ENV = "AIGW_LOAD_MASTER_DURATION_S"
"""Set on a master by ``aigw load --master``: stop the workers after this many seconds (``_timed_stop``)."""
_SESSIONS = uuid.UUID("5f0c1d2e-8a4b-4c6d-9e7f-0a1b2c3d4e5f")  # namespace for pooled session ids


class LoadFailure(Exception):
    """An answer that was not a complete answer; its message is the error class Locust groups by."""


def _profile() -> LoadProfile:
    path = os.environ.get(PROFILE_ENV)
    if path:
        return load_profile(path)
    return LoadProfile.model_validate({"tenants": [{"tenant": "example"}]})


class ChatUser(User):
    """One simulated client of ``/chat``: draws a tenant, session, user id and prompt, then waits."""

    abstract = False
    profile: LoadProfile | None = None
    """The profile every user of this class follows (read from ``AIGW_LOAD_PROFILE`` on first use)."""

    def __init__(self, environment: Any) -> None:
        super().__init__(environment)
        cls = type(self)
        if cls.profile is None:
            cls.profile = _profile()
        self._profile = cls.profile
        self._draw = Draw(self._profile, seed=uuid.uuid4().int & 0xFFFFFFFF)
        self._http = requests.Session()
        self._http.trust_env = False  # loopback and deployments alike: no proxy from the environment

    def wait_time(self) -> float:
        return self._draw.think_time()

    def on_stop(self) -> None:
        self._http.close()

    @task
    def chat(self) -> None:
        tenant = self._draw.tenant()
        stream = self._draw.stream()
        index = self._draw.session_index()
        session = uuid.uuid5(_SESSIONS, f"{tenant}:{index}") if index is not None else uuid.uuid4()
        body = {
            "sessionId": str(session),
            "message": self._draw.prompt(),
            "stream": stream,
            "userId": self._draw.user_id(),
        }
        request_id = uuid.uuid4().hex
        headers = {"x-tenant-id": tenant, "x-request-id": request_id, "x-trace-id": request_id}
        answer = self._send(body, headers, stream)
        self._report(answer)

    def _send(self, body: dict[str, Any], headers: dict[str, str], stream: bool) -> Answer:
        assert self._profile is not None
        sent_at = time.perf_counter()
        recorder = AnswerRecorder(stream=stream, sent_at=sent_at)
        if not self.host:
            raise LoadFailure("no host: give Locust --host (the SUT's base URL)")
        url = f"{self.host.rstrip('/')}/chat"
        try:
            with self._http.post(
                url, json=body, headers=headers, stream=True, timeout=self._profile.request_timeout_s
            ) as response:
                recorder.head(response.status_code, response.headers)
                # chunk_size=None yields each HTTP chunk as it arrives, so arrival times are per event.
                for chunk in response.iter_content(chunk_size=None):
                    recorder.chunk(chunk, time.perf_counter())
        except requests.RequestException as exc:
            return recorder.finish(time.perf_counter(), transport_error=type(exc).__name__)
        return recorder.finish(time.perf_counter())

    def _report(self, answer: Answer) -> None:
        fire = self.environment.events.request.fire

        def report(kind: str, name: str, time_ms: float, length: int = 0, failure: str | None = None) -> None:
            exception = LoadFailure(failure) if failure else None
            fire(
                request_type=kind,
                name=name,
                response_time=time_ms,
                response_length=length,
                exception=exception,
                context={},
            )

        failure = outcome_class(answer)
        report("SSE" if answer.stream else "JSON", "/chat", answer.duration_ms, answer.tokens, failure)
        if failure:
            report("ERROR", failure, 0)
        if answer.ttft_ms is not None:
            report("TTFT", "/chat", answer.ttft_ms)
        if answer.gaps_ms:
            report("GAP", "/chat max inter-token gap", max(answer.gaps_ms))
        if answer.stream and answer.transport_error is None:
            if answer.violations:
                rule = answer.violations[0].split(":", 1)[0]
                report("CONTRACT", rule, 0, failure=answer.violations[0])
            else:
                report("CONTRACT", "/chat", 0)


@events.test_start.add_listener  # type: ignore[untyped-decorator]  # gevent, under it, has no stubs
def _timed_stop(environment: Environment, **_: Any) -> None:
    """A master's end of the run that loses no answer.

    Locust's own ``--run-time`` on a master sends workers ``quit`` and waits half a second for their last
    statistics, so answers still streaming at the end (they finish within ``--stop-timeout``) are missing
    from the aggregate. Instead: tell the workers to stop, wait until every one has (their in-flight answers
    complete and are reported), let one more statistics report arrive, then quit.
    """
    duration = os.environ.get(MASTER_DURATION_ENV)
    runner = environment.runner
    if not duration or not isinstance(runner, MasterRunner):
        return

    def stop_then_quit() -> None:
        runner.stop()  # returns once every worker reports zero users
        gevent.sleep(WORKER_REPORT_INTERVAL + 1)
        runner.quit()

    gevent.spawn_later(float(duration), stop_then_quit)
