"""Run a user's Worker in workerd (Miniflare, in a Node.js process) with ``env.AI`` pointed at the fake.

    config = load_worker_config("path/to/wrangler.jsonc", environment="dev")
    async with WorkerBridge.running(config, upstream=fake.base_url) as worker:
        worker.url                      # "http://127.0.0.1:PORT": the Worker, serving what it serves
        worker.problems()               # uncaught exceptions, "hung" cancellations, broken response streams
        await worker.kv_get("USAGE", "t1:token-usage:daily:2026-11-27")
        await worker.do_storage("SESSIONS", "t1:SESSION-ID", key="messages")   # needs inspect_classes

The Node side is ``js/runner.mjs``; the two speak JSON lines over the child's stdin and stdout. Leaving the
context stops the Worker (workerd included) and waits for it; nothing outlives it. Without Node.js or the
npm packages (found as ``node_packages`` says), ``running`` raises ``TargetUnavailable`` saying what to
install. This module never decides what a response should be: it starts, reports and stops.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import re
import shutil
import signal
import tempfile
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aigw_harness.errors import HarnessError, TargetUnavailable
from aigw_harness.worker.node_packages import find_node_packages
from aigw_harness.worker.wrangler import WorkerConfig

__all__ = [
    "WorkerBridge",
    "WorkerEvent",
    "WorkerStartError",
    "find_node",
    "node_modules_dir",
]

log = logging.getLogger("aigw.worker")

JS_DIR = Path(__file__).parent / "js"
RUNNER = JS_DIR / "runner.mjs"
AI_BINDING_MODULE = JS_DIR / "ai-binding.mjs"
MIN_NODE = (20, 18)
START_TIMEOUT_S = 60.0
STOP_TIMEOUT_S = 10.0
FRONT_MODULE = "aigw-front.mjs"  # the runner's front Worker: its stack frames are not the user's
PROBLEM_KINDS = frozenset({"exception", "hung", "stream-error"})


class WorkerStartError(HarnessError):
    """The Worker could not be started: bundling failed, workerd refused the configuration, or it crashed."""


@dataclass(frozen=True, slots=True)
class WorkerEvent:
    """Something the Worker or workerd reported: a log line, a warning, or a problem with a request."""

    kind: str  # "log", "warning", "exception", "hung", "stream-error"
    message: str
    level: str = ""
    detail: Mapping[str, Any] = field(default_factory=dict)

    def describe(self) -> str:
        """One readable paragraph, as the CLI prints it."""
        where = f"{self.detail.get('method', '')} {_path_of(str(self.detail.get('url', '')))}".strip()
        if self.kind == "exception":
            return f"the Worker threw an uncaught exception on {where}: {self.message}{_stack(self.detail)}"
        if self.kind == "hung":
            return (
                f"workerd cancelled {where} because the Worker hung: the response depended on a promise "
                "that nothing could resolve any more (typically I/O started by another request, or a "
                "stream nobody writes to). Cloudflare cancels such requests the same way."
            )
        if self.kind == "stream-error":
            return f"the response body of {where} failed mid-stream: {self.message}{_stack(self.detail)}"
        if self.kind == "warning":
            return f"warning: {self.message}"
        return self.message


def _path_of(url: str) -> str:
    match = re.match(r"^[a-z]+://[^/]+(/.*)?$", url)
    return (match.group(1) or "/") if match else url


def _stack(detail: Mapping[str, Any]) -> str:
    stack = str(detail.get("stack") or "")
    frames = [
        line.strip()
        for line in stack.splitlines()[1:]
        if line.strip().startswith("at ") and FRONT_MODULE not in line
    ]
    return ("\n    " + "\n    ".join(frames[:6])) if frames else ""


def find_node() -> str:
    """The ``node`` executable (``AIGW_NODE`` or PATH), checked to be recent enough."""
    node = os.environ.get("AIGW_NODE") or shutil.which("node")
    if not node:
        raise TargetUnavailable(
            "the Worker bridge needs Node.js 20.18 or newer, and 'node' is not on PATH "
            "(install Node.js, or set AIGW_NODE to its path); everything else in aigw works without it"
        )
    return node


def _check_node_version(version_text: str) -> None:
    match = re.match(r"v?(\d+)\.(\d+)", version_text.strip())
    if match is None or (int(match.group(1)), int(match.group(2))) < MIN_NODE:
        raise TargetUnavailable(
            f"the Worker bridge needs Node.js {MIN_NODE[0]}.{MIN_NODE[1]} or newer; "
            f"found {version_text.strip()!r}"
        )


def node_modules_dir(project_dir: Path | None = None, configured: str | Path | None = None) -> Path:
    """The ``node_modules`` folder holding supported ``miniflare`` and ``esbuild`` (see
    ``aigw_harness.worker.node_packages`` for where they are looked for)."""
    return find_node_packages((project_dir,) if project_dir else (), configured).node_modules


def runner_config(
    config: WorkerConfig,
    upstream: str,
    *,
    host: str,
    port: int,
    extra_vars: Mapping[str, Any] | None = None,
    replace_modules: Mapping[str, str] | None = None,
    inspect_classes: tuple[str, ...] = (),
) -> dict[str, Any]:
    """The JSON document ``runner.mjs`` reads. ``extra_vars`` override the Worker's vars; a ``None`` value
    removes the var (the Worker sees it unset). ``inspect_classes`` names the Durable Object classes whose
    storage ``WorkerBridge.do_storage`` may read."""
    merged = {**config.vars, **(extra_vars or {})}
    variables = {name: value for name, value in merged.items() if value is not None}
    return {
        "entry": str(config.main),
        "name": config.name,
        "compatibilityDate": config.compatibility_date,
        "compatibilityFlags": list(config.compatibility_flags),
        "vars": variables,
        "kvNamespaces": list(config.kv_namespaces),
        "d1Databases": list(config.d1_databases),
        "r2Buckets": list(config.r2_buckets),
        "durableObjects": [
            {"binding": d.binding, "className": d.class_name, "sqlite": d.sqlite}
            for d in config.durable_objects
        ],
        "aiBinding": config.ai_binding,
        "define": dict(config.define),
        "alias": dict(config.alias),
        "stubs": [
            {"binding": s.binding, "kind": s.kind, "className": s.class_name, "sqlite": s.sqlite}
            for s in config.stubs
        ],
        "replaceModules": {str(Path(k).resolve()): v for k, v in (replace_modules or {}).items()},
        "inspectClasses": list(inspect_classes),
        "upstream": upstream.rstrip("/"),
        "host": host,
        "port": port,
    }


class WorkerBridge:
    """A running Worker. Build it with ``WorkerBridge.running(...)``."""

    def __init__(self, config: WorkerConfig, process: asyncio.subprocess.Process) -> None:
        self.config = config
        self.url = ""
        self.events: list[WorkerEvent] = []
        self.compatibility_date: str | None = None
        self._process = process
        self._ready: asyncio.Future[str] = asyncio.get_running_loop().create_future()
        self._replies: dict[int, asyncio.Future[Any]] = {}
        self._next_id = 0
        self._stderr: list[str] = []
        self._listeners: list[Callable[[WorkerEvent], None]] = []
        self.inspect_classes: tuple[str, ...] = ()
        """The Durable Object classes whose storage ``do_storage`` may read."""

    # -- what the Worker reported ---------------------------------------------------------------

    def problems(self) -> list[WorkerEvent]:
        """Uncaught exceptions, hung cancellations and failed response streams, oldest first."""
        return [event for event in self.events if event.kind in PROBLEM_KINDS]

    async def settle(self) -> list[WorkerEvent]:
        """The problems so far, once every event of the requests already answered has arrived."""
        # Events travel on the same line-ordered channel as replies: a reply means they are all in.
        await self._command({"op": "ping"})
        return self.problems()

    def logs(self) -> list[WorkerEvent]:
        return [event for event in self.events if event.kind == "log"]

    def clear_events(self) -> None:
        self.events.clear()

    def subscribe(self, listener: Callable[[WorkerEvent], None]) -> None:
        """Call ``listener`` with each event as it arrives (the CLI prints them)."""
        self._listeners.append(listener)

    async def wait_exited(self) -> int:
        """Return when the Worker process has exited (it should not, until stopped), with its status."""
        return await self._process.wait()

    # -- simulated storage, read and written from outside the Worker ------------------------------

    async def kv_get(self, binding: str, key: str) -> str | None:
        result = await self._command({"op": "kv.get", "binding": binding, "key": key})
        return None if result is None else str(result)

    async def kv_put(self, binding: str, key: str, value: str) -> None:
        await self._command({"op": "kv.put", "binding": binding, "key": key, "value": value})

    async def kv_delete(self, binding: str, key: str) -> None:
        await self._command({"op": "kv.delete", "binding": binding, "key": key})

    async def kv_list(self, binding: str, prefix: str | None = None) -> list[str]:
        result = await self._command({"op": "kv.list", "binding": binding, "prefix": prefix})
        return [str(key) for key in result]

    async def do_storage(
        self, binding: str, name: str, *, key: str | None = None, prefix: str | None = None
    ) -> list[tuple[str, Any]]:
        """The stored entries ``(key, value)`` of the Durable Object called ``name`` in the namespace
        ``binding``: the one under ``key``, or every one under ``prefix`` in key order (all without either).
        Its class must be among the ``inspect_classes`` the Worker was started with. Values come back as
        JSON (a ``Date`` as its ISO string)."""
        classes = self.config.durable_object_classes()
        if classes.get(binding) not in self.inspect_classes:
            # Sent anyway, the request would reach the Worker's own fetch handler of that object.
            raise HarnessError(
                f"the storage of {binding} cannot be read: its class {classes.get(binding)!r} was not "
                "among the inspect_classes the Worker was started with"
            )
        result = await self._command(
            {"op": "do.storage", "binding": binding, "name": name, "key": key, "prefix": prefix}
        )
        return [(str(entry[0]), entry[1]) for entry in result]

    async def set_clock_offset(self, seconds: float) -> None:
        """Move the Worker's ``Date`` (its Durable Objects' too) ``seconds`` away from the real clock."""
        await self._command({"op": "clock.set", "offsetMs": round(seconds * 1000)})

    async def d1_query(self, binding: str, sql: str, *params: Any) -> list[dict[str, Any]]:
        result = await self._command(
            {"op": "d1.query", "binding": binding, "sql": sql, "params": list(params)}
        )
        return list(result)

    async def _command(self, request: dict[str, Any]) -> Any:
        if self._process.returncode is not None or self._process.stdin is None:
            raise WorkerStartError("the Worker is not running any more")
        self._next_id += 1
        request_id = self._next_id
        reply: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._replies[request_id] = reply
        self._process.stdin.write((json.dumps({**request, "id": request_id}) + "\n").encode())
        await self._process.stdin.drain()
        try:
            return await asyncio.wait_for(reply, timeout=30)
        finally:
            self._replies.pop(request_id, None)

    # -- the process -------------------------------------------------------------------------------

    def _handle(self, event: dict[str, Any]) -> None:
        kind = str(event.get("event", ""))
        if kind == "ready":
            self.url = str(event["url"])
            self.compatibility_date = event.get("compatibilityDate")
            if not self._ready.done():
                self._ready.set_result(self.url)
            return
        if kind == "reply":
            reply = self._replies.get(int(event.get("id", -1)))
            if reply is not None and not reply.done():
                if event.get("ok"):
                    reply.set_result(event.get("result"))
                else:
                    reply.set_exception(HarnessError(f"worker bridge: {event.get('error')}"))
            return
        if kind == "fatal":
            if not self._ready.done():
                self._ready.set_exception(WorkerStartError(f"{self.config.source}: {event.get('message')}"))
            return
        if kind == "stopped":
            return
        worker_event = WorkerEvent(
            kind=kind,
            message=str(event.get("message", "")),
            level=str(event.get("level", "")),
            detail={k: v for k, v in event.items() if k != "event"},
        )
        self.events.append(worker_event)
        if kind in PROBLEM_KINDS:
            log.warning("%s", worker_event.describe())
        elif kind == "warning":
            log.warning("%s", worker_event.message)
        else:
            log.debug("worker %s: %s", worker_event.level, worker_event.message)
        for listener in self._listeners:
            listener(worker_event)

    async def _read_stdout(self) -> None:
        assert self._process.stdout is not None
        async for raw in self._process.stdout:
            line = raw.decode(errors="replace").strip()
            if not line:
                continue
            try:
                event = json.loads(line)
            except json.JSONDecodeError:
                self._stderr.append(line)
                continue
            if isinstance(event, dict):
                self._handle(event)
        self._finish("the Worker process exited")

    async def _read_stderr(self) -> None:
        assert self._process.stderr is not None
        async for raw in self._process.stderr:
            line = raw.decode(errors="replace").rstrip()
            if line:
                self._stderr.append(line)
                del self._stderr[:-50]
                log.debug("node: %s", line)

    def _finish(self, why: str) -> None:
        tail = "\n  ".join(self._stderr[-10:])
        error = WorkerStartError(
            f"{self.config.source}: {why} before it was ready" + (f":\n  {tail}" if tail else "")
        )
        if not self._ready.done():
            self._ready.set_exception(error)
        for reply in self._replies.values():
            if not reply.done():
                reply.set_exception(WorkerStartError("the Worker process exited"))

    async def _stop(self) -> None:
        process = self._process
        if process.returncode is None and process.stdin is not None:
            with contextlib.suppress(ConnectionError, RuntimeError):
                process.stdin.write(b'{"op":"stop"}\n')
                await process.stdin.drain()
                process.stdin.close()
        try:
            await asyncio.wait_for(process.wait(), timeout=STOP_TIMEOUT_S)
        except TimeoutError:
            log.warning("the Worker did not stop within %.0f s; killing it", STOP_TIMEOUT_S)
            with contextlib.suppress(ProcessLookupError):
                # The runner leads its own process group: this reaches workerd too.
                os.killpg(process.pid, signal.SIGKILL)
            await process.wait()

    @classmethod
    @contextlib.asynccontextmanager
    async def running(
        cls,
        config: WorkerConfig,
        upstream: str,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        extra_vars: Mapping[str, Any] | None = None,
        start_timeout: float = START_TIMEOUT_S,
        replace_modules: Mapping[str, str] | None = None,
        inspect_classes: tuple[str, ...] = (),
        node_modules: str | Path | None = None,
    ) -> AsyncIterator[WorkerBridge]:
        """Bundle and start the Worker; stop it (and workerd) on leaving. ``replace_modules`` maps a source
        file of the Worker to the JavaScript bundled in its place (tenants bundled at build time);
        ``inspect_classes`` names the Durable Object classes whose storage ``do_storage`` reads;
        ``node_modules`` is where miniflare and esbuild are (by default looked for, see ``node_packages``)."""
        node = find_node()
        packages = find_node_packages((config.source.parent, config.main.parent), node_modules)
        log.debug("the Worker bridge runs with %s", packages.describe())
        version = await asyncio.create_subprocess_exec(node, "--version", stdout=asyncio.subprocess.PIPE)
        out, _ = await version.communicate()
        _check_node_version(out.decode())
        for warning in config.warnings:
            log.warning("%s", warning)

        with tempfile.TemporaryDirectory(prefix="aigw-bridge-") as scratch:
            config_path = Path(scratch) / "runner.json"
            document = runner_config(
                config,
                upstream,
                host=host,
                port=port,
                extra_vars=extra_vars,
                replace_modules=replace_modules,
                inspect_classes=inspect_classes,
            )
            config_path.write_text(json.dumps(document), encoding="utf-8")
            process = await asyncio.create_subprocess_exec(
                node,
                str(RUNNER),
                str(config_path),
                stdin=asyncio.subprocess.PIPE,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.PIPE,
                env={**os.environ, "AIGW_NODE_MODULES": str(packages.node_modules)},
                start_new_session=True,
            )
            bridge = cls(config, process)
            bridge.inspect_classes = inspect_classes
            try:
                async with asyncio.TaskGroup() as tasks:
                    tasks.create_task(bridge._read_stdout())
                    tasks.create_task(bridge._read_stderr())
                    try:
                        try:
                            await asyncio.wait_for(asyncio.shield(bridge._ready), timeout=start_timeout)
                        except TimeoutError:
                            raise WorkerStartError(
                                f"{config.source}: the Worker did not start within {start_timeout:.0f} s"
                            ) from None
                        yield bridge
                    finally:
                        await bridge._stop()
            except BaseExceptionGroup as group:
                # The readers never fail; unwrap so that callers see the error itself.
                if len(group.exceptions) == 1:
                    raise group.exceptions[0] from None
                raise
