"""Reading a Worker's Durable Object storage from outside through the bridge: a key or a key prefix, SQLite or
key-value backed, a class on the platform's base or a plain one; and the worker target's options for it."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from aigw_harness.errors import ConfigError, HarnessError
from aigw_harness.scenarios.targets import TargetOptions, load_target
from aigw_harness.worker.bridge import WorkerBridge
from aigw_harness.worker.wrangler import load_worker_config

from .conftest import CHAT_WORKER, needs_node

pytestmark = needs_node

UNUSED_UPSTREAM = "http://127.0.0.1:9"

# Two session stores with different layouts: one key per message (SQLite-backed, on the platform's base
# class) and one list under "messages" (key-value backed, a plain class given its state).
STORES_WORKER = """
import { DurableObject } from "cloudflare:workers";
export class PerKey extends DurableObject {
  async fetch(request) {
    const { n, role, content } = await request.json();
    await this.ctx.storage.put("msg:" + String(n).padStart(4, "0"), { role, content, timestamp: n });
    await this.ctx.storage.put("other", "not a message");
    return new Response("stored");
  }
}
export class Listed {
  constructor(state) { this.state = state; }
  async fetch(request) {
    const message = await request.json();
    const messages = (await this.state.storage.get("messages")) ?? [];
    messages.push(message);
    await this.state.storage.put("messages", messages);
    return new Response("stored");
  }
}
export default {
  async fetch(request, env) {
    const url = new URL(request.url);
    const namespace = url.pathname === "/per-key" ? env.PER_KEY : env.LISTED;
    const stub = namespace.get(namespace.idFromName(url.searchParams.get("name")));
    return stub.fetch(new Request("https://object/", { method: "POST", body: await request.text() }));
  },
};
"""

WRANGLER = """{
  "name": "stores", "main": "index.js", "compatibility_date": "2026-02-01",
  "durable_objects": {"bindings": [
    {"name": "PER_KEY", "class_name": "PerKey"}, {"name": "LISTED", "class_name": "Listed"}]},
  "migrations": [{"tag": "v1", "new_sqlite_classes": ["PerKey"], "new_classes": ["Listed"]}]
}"""


async def test_durable_object_storage_is_read_by_key_and_by_prefix_on_either_backend(tmp_path: Path) -> None:
    (tmp_path / "index.js").write_text(STORES_WORKER)
    (tmp_path / "wrangler.jsonc").write_text(WRANGLER)
    config = load_worker_config(tmp_path)
    assert {d.class_name: d.sqlite for d in config.durable_objects} == {"PerKey": True, "Listed": False}
    async with (
        WorkerBridge.running(config, UNUSED_UPSTREAM, inspect_classes=("PerKey", "Listed")) as bridge,
        httpx.AsyncClient(base_url=bridge.url) as http,
    ):
        for n, role in ((2, "assistant"), (1, "user")):
            stored = await http.post("/per-key?name=t:s", json={"n": n, "role": role, "content": f"m{n}"})
            assert stored.text == "stored"
        await http.post("/listed?name=t:s", json={"role": "user", "content": "hello"})
        # The Worker still answers its own requests to the objects: only the runner's token reads them.
        per_key = await bridge.do_storage("PER_KEY", "t:s", prefix="msg:")
        listed = await bridge.do_storage("LISTED", "t:s", key="messages")
        everything = await bridge.do_storage("PER_KEY", "t:s")
        never_written = await bridge.do_storage("LISTED", "t:other", key="messages")
    assert per_key == [
        ("msg:0001", {"role": "user", "content": "m1", "timestamp": 1}),
        ("msg:0002", {"role": "assistant", "content": "m2", "timestamp": 2}),
    ]
    assert listed == [("messages", [{"role": "user", "content": "hello"}])]
    assert [key for key, _ in everything] == ["msg:0001", "msg:0002", "other"]
    assert never_written == []


async def test_a_class_not_started_for_inspection_cannot_be_read(tmp_path: Path) -> None:
    (tmp_path / "index.js").write_text(STORES_WORKER)
    (tmp_path / "wrangler.jsonc").write_text(WRANGLER)
    async with WorkerBridge.running(load_worker_config(tmp_path), UNUSED_UPSTREAM) as bridge:
        with pytest.raises(HarnessError, match="the storage of LISTED cannot be read: its class 'Listed'"):
            await bridge.do_storage("LISTED", "t:s", key="messages")


def test_session_options_name_what_is_wrong() -> None:
    base = {"config": str(CHAT_WORKER), "env": "dev"}
    target = load_target("worker", TargetOptions(extra={**base, "sessions_do": "SESSIONS"}))
    assert target.sessions is not None  # type: ignore[attr-defined]
    with pytest.raises(ConfigError, match="sessions_do='NOPE': the Worker has no such Durable Object"):
        load_target("worker", TargetOptions(extra={**base, "sessions_do": "NOPE"}))
    with pytest.raises(ConfigError, match="sessions_key: give sessions_do=BINDING too"):
        load_target("worker", TargetOptions(extra={**base, "sessions_key": "messages"}))
    both = {**base, "sessions_do": "SESSIONS", "sessions_key": "m", "sessions_prefix": "msg:"}
    with pytest.raises(ConfigError, match="sessions_key and sessions_prefix: give one"):
        load_target("worker", TargetOptions(extra=both))
    named = {**base, "sessions_do": "SESSIONS", "sessions_name": "{tenant}/{id}"}
    with pytest.raises(ConfigError, match=r"sessions_name='\{tenant\}/\{id\}': use the placeholders"):
        load_target("worker", TargetOptions(extra=named))
