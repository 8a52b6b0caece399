"""Where the Worker bridge finds miniflare and esbuild, which versions it accepts, ``aigw worker setup``,
and the env.AI adapter as an npm package a Worker project's own tests import by name."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import stat
import sys
from pathlib import Path

import pytest

from aigw_harness.cli import main
from aigw_harness.errors import TargetUnavailable
from aigw_harness.worker import node_packages
from aigw_harness.worker.bridge import JS_DIR, find_node
from aigw_harness.worker.node_packages import cache_dir, find_node_packages, pinned_versions

from .conftest import NODE_MISSING

ROOT = Path(__file__).resolve().parents[2]
PINS = pinned_versions()


def _install(node_modules: Path, **versions: str) -> Path:
    """Stand-ins for installed packages: only their package.json, which is all the search reads."""
    for name, version in versions.items():
        (node_modules / name).mkdir(parents=True, exist_ok=True)
        (node_modules / name / "package.json").write_text(json.dumps({"name": name, "version": version}))
    return node_modules


@pytest.fixture
def no_checkout(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """As after a pip install: no aigw-harness checkout, an empty per-user cache, nothing configured."""
    monkeypatch.setattr(node_packages, "_CHECKOUT", tmp_path / "no-checkout")
    monkeypatch.setenv("AIGW_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.delenv("AIGW_NODE_MODULES", raising=False)
    return tmp_path


def test_the_worker_projects_own_packages_are_used(no_checkout: Path) -> None:
    project = no_checkout / "project"
    _install(project / "node_modules", miniflare="4.20250801.0", esbuild="0.25.4")
    found = find_node_packages([project / "apps" / "api"])
    assert found.node_modules == project / "node_modules"
    assert found.source == "the Worker project"
    assert found.versions == {"miniflare": "4.20250801.0", "esbuild": "0.25.4"}


def test_packages_beside_wrangler_in_a_pnpm_store_are_found(no_checkout: Path) -> None:
    project = no_checkout / "project"
    store = project / "node_modules" / ".pnpm" / "wrangler@4.30.0" / "node_modules"
    _install(store, wrangler="4.30.0", miniflare="4.20250816.0", esbuild="0.25.4")
    (project / "node_modules" / "wrangler").symlink_to(store / "wrangler")
    assert find_node_packages([project]).node_modules == store.resolve()


def test_without_packages_the_error_offers_aigw_worker_setup(no_checkout: Path) -> None:
    with pytest.raises(TargetUnavailable) as raised:
        find_node_packages([no_checkout / "project"])
    message = str(raised.value)
    assert "run 'aigw worker setup'" in message
    assert f"miniflare {PINS['miniflare']}" in message
    assert str(cache_dir()) in message
    assert "npm ci" not in message


@pytest.mark.parametrize(
    ("versions", "says"),
    [
        (
            {"miniflare": "3.20240909.0", "esbuild": "0.17.19"},
            "miniflare 3.20240909.0 is older than supported",
        ),
        ({"miniflare": "4.20250428.1", "esbuild": "0.25.4"}, "enable_request_signal"),
        ({"miniflare": "5.0.0", "esbuild": "0.28.2"}, "miniflare 5.0.0 is newer than supported"),
        ({"miniflare": "4.20260730.0", "esbuild": "0.24.2"}, "esbuild 0.24.2 is older than supported"),
        ({"miniflare": "4.20260730.0"}, "esbuild is not installed there"),
    ],
)
def test_an_unsupported_version_in_the_project_is_named(
    no_checkout: Path, versions: dict[str, str], says: str
) -> None:
    project = no_checkout / "project"
    _install(project / "node_modules", **versions)
    with pytest.raises(TargetUnavailable) as raised:
        find_node_packages([project])
    message = str(raised.value)
    assert f"unusable: the Worker project ({project / 'node_modules'}): " in message
    assert says in message
    assert "run 'aigw worker setup'" in message


def test_an_unsupported_project_falls_back_to_the_cache_with_a_warning(
    no_checkout: Path, caplog: pytest.LogCaptureFixture
) -> None:
    project = no_checkout / "project"
    _install(project / "node_modules", miniflare="3.20240909.0", esbuild="0.17.19")
    cached = _install(cache_dir() / "node_modules", **PINS)
    found = find_node_packages([project])
    assert found.node_modules == cached
    assert "miniflare 3.20240909.0 is older than supported" in caplog.text
    assert "the Worker bridge skipped the Worker project" in caplog.text


def test_a_configured_folder_replaces_the_search(no_checkout: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    project = no_checkout / "project"
    _install(project / "node_modules", **PINS)
    chosen = _install(no_checkout / "elsewhere" / "node_modules", miniflare="4.20250705.0", esbuild="0.25.0")
    assert find_node_packages([project], configured=chosen).node_modules == chosen
    monkeypatch.setenv("AIGW_NODE_MODULES", str(chosen))
    assert find_node_packages([project]).source.startswith("the configured folder AIGW_NODE_MODULES=")
    empty = no_checkout / "empty"
    with pytest.raises(TargetUnavailable, match=r"cannot use node_modules=.*empty: neither miniflare nor"):
        find_node_packages([project], configured=empty)


def test_the_cache_folder_follows_xdg_and_the_pins(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("AIGW_CACHE_DIR", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    expected = f"esbuild-{PINS['esbuild']}-miniflare-{PINS['miniflare']}"
    assert cache_dir() == tmp_path / "aigw-harness" / "node" / expected


_FAKE_NPM = """#!{python}
# Records its arguments and installs stand-ins at the versions of the lock file it was given.
import json, sys, pathlib
args = sys.argv[1:]
prefix = pathlib.Path(args[args.index("--prefix") + 1])
(prefix / "npm-args.json").write_text(json.dumps(args))
lock = json.loads((prefix / "package-lock.json").read_text())
for name in ("miniflare", "esbuild"):
    folder = prefix / "node_modules" / name
    folder.mkdir(parents=True)
    version = lock["packages"]["node_modules/" + name]["version"]
    (folder / "package.json").write_text(json.dumps({{"name": name, "version": version}}))
"""


def test_setup_runs_npm_ci_from_the_shipped_lock_file_into_the_cache(
    no_checkout: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    npm = no_checkout / "npm"
    npm.write_text(_FAKE_NPM.format(python=sys.executable))
    npm.chmod(npm.stat().st_mode | stat.S_IXUSR)
    monkeypatch.setenv("AIGW_NPM", str(npm))
    assert main(["worker", "setup"]) == 0
    target = cache_dir()
    args = json.loads((target / "npm-args.json").read_text())
    assert args[:3] == ["ci", "--prefix", str(target)]
    assert (target / "package.json").read_bytes() == (node_packages.RUNTIME_DIR / "package.json").read_bytes()
    out = capsys.readouterr().out
    assert f"miniflare {PINS['miniflare']}" in out
    assert str(target / "node_modules") in out
    found = find_node_packages([no_checkout / "project"])
    assert found.node_modules == target / "node_modules"
    assert found.source.startswith("the aigw cache")


def test_setup_without_npm_says_what_to_install(
    no_checkout: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("AIGW_NPM", raising=False)
    monkeypatch.setenv("PATH", str(no_checkout / "nothing"))
    assert main(["worker", "setup"]) == 2
    err = capsys.readouterr().err
    assert "aigw worker setup needs npm, which comes with Node.js 20.18 or newer" in err
    assert "Traceback" not in err


def test_setup_print_shows_the_folder_and_the_command(
    no_checkout: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["worker", "setup", "--print", "--prefix", str(no_checkout / "mine")]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == str(no_checkout / "mine")
    assert str(node_packages.RUNTIME_DIR / "package-lock.json") in lines[1]
    assert lines[2].startswith(f"npm ci --prefix {no_checkout / 'mine'} ")
    assert not (no_checkout / "mine").exists()


def test_the_pins_shipped_are_the_development_install() -> None:
    for name in ("package.json", "package-lock.json"):
        assert (node_packages.RUNTIME_DIR / name).read_bytes() == (ROOT / name).read_bytes(), name
    lock = json.loads((node_packages.RUNTIME_DIR / "package-lock.json").read_text())
    for name, version in PINS.items():
        assert lock["packages"][f"node_modules/{name}"]["version"] == version
        supported = node_packages.SUPPORTED[name]
        assert supported.problem(name, version) is None


def test_js_path_is_the_npm_package_of_the_adapter(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["worker", "js-path"]) == 0
    folder = Path(capsys.readouterr().out.strip())
    assert folder == JS_DIR
    manifest = json.loads((folder / "package.json").read_text())
    assert manifest["name"] == "@aigw-harness/worker-bridge"
    assert "version" not in manifest  # one version source: aigw_harness.__version__
    assert manifest["exports"]["."] == "./ai-binding.mjs"
    assert "dependencies" not in manifest  # installing it never reaches a registry


CONSUMER_TEST = """
import assert from "node:assert/strict";
import { test } from "node:test";
import { createAiBinding, InferenceUpstreamError } from "@aigw-harness/worker-bridge";
import { createAiBinding as again } from "@aigw-harness/worker-bridge/ai-binding";

test("env.AI from the package answers from the fake", async () => {
  assert.equal(again, createAiBinding);
  const AI = createAiBinding({ baseUrl: process.env.AIGW_FAKE_URL });
  const answer = await AI.run("@cf/meta/llama-3.1-8b-instruct-fast",
    { messages: [{ role: "user", content: "hello" }] }, { gateway: { id: "my-gateway" } });
  assert.equal(typeof answer.response, "string");
  assert.ok(answer.response.length > 0);
  assert.ok(AI.aiGatewayLogId);
  await assert.rejects(AI.run("@cf/no/such-model", { prompt: "x" }), InferenceUpstreamError);
});
"""


def make_consumer_project(folder: Path, package_dir: Path) -> Path:
    """A Node project whose package.json depends on the adapter's package by a file: path."""
    folder.mkdir(parents=True)
    manifest = {
        "name": "my-worker-tests",
        "private": True,
        "type": "module",
        "devDependencies": {"@aigw-harness/worker-bridge": f"file:{package_dir}"},
    }
    (folder / "package.json").write_text(json.dumps(manifest, indent=2))
    (folder / "ai.test.mjs").write_text(CONSUMER_TEST)
    return folder


async def _run(*args: str, cwd: Path, env: dict[str, str] | None = None) -> tuple[int, str]:
    process = await asyncio.create_subprocess_exec(
        *args,
        cwd=cwd,
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    out, _ = await asyncio.wait_for(process.communicate(), timeout=120)
    return await process.wait(), out.decode(errors="replace")


@pytest.mark.skipif(shutil.which("npm") is None or NODE_MISSING is not None, reason="needs Node.js and npm")
async def test_a_worker_project_imports_the_adapter_by_its_name(tmp_path: Path) -> None:
    from aigw_fakes.config import FakeConfig, FidelityOptions
    from aigw_fakes.server import FakeGateway

    project = make_consumer_project(tmp_path / "my-worker", JS_DIR)
    npm = shutil.which("npm")
    assert npm is not None
    status, out = await _run(
        npm, "install", "--offline", "--no-audit", "--no-fund", "--ignore-scripts", cwd=project
    )
    assert status == 0, out
    assert (project / "node_modules" / "@aigw-harness" / "worker-bridge" / "package.json").is_file()
    config = FakeConfig(fidelity=FidelityOptions(auto_create_gateways=True))
    async with FakeGateway.running(config=config) as fake:
        env = {**os.environ, "AIGW_FAKE_URL": fake.base_url}
        status, out = await _run(find_node(), "--test", "ai.test.mjs", cwd=project, env=env)
    assert status == 0, out
    assert "# pass 1" in out
    assert "# fail 0" in out


@pytest.mark.skipif(shutil.which("npm") is None or NODE_MISSING is not None, reason="needs Node.js and npm")
async def test_setup_for_real_then_a_worker_runs_from_the_cache(
    no_checkout: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """npm ci from the shipped lock file, offline (from npm's own cache, which installing this checkout's
    packages filled), then a Worker without node_modules of its own runs with what it installed."""
    monkeypatch.delenv("AIGW_NPM", raising=False)
    monkeypatch.setenv("npm_config_offline", "true")
    try:
        await _setup_and_run(no_checkout)
    finally:
        shutil.rmtree(no_checkout / "cache", ignore_errors=True)  # workerd and esbuild: about 185 MB


async def _setup_and_run(folder: Path) -> None:
    import httpx

    from aigw_fakes.config import FakeConfig, FidelityOptions
    from aigw_fakes.server import FakeGateway
    from aigw_harness.worker.bridge import WorkerBridge
    from aigw_harness.worker.wrangler import load_worker_config

    try:
        installed = await asyncio.to_thread(node_packages.install)
    except TargetUnavailable as exc:
        if "ENOTCACHED" in str(exc):
            pytest.skip("npm's cache does not hold the pinned packages (run npm ci in this checkout once)")
        raise
    assert installed.versions == PINS
    project = folder / "my-worker"
    shutil.copytree(Path(__file__).parent / "fixtures" / "passthrough", project)
    config = load_worker_config(project / "wrangler.jsonc")
    assert find_node_packages([project]).node_modules == cache_dir() / "node_modules"
    fake_config = FakeConfig(fidelity=FidelityOptions(auto_create_gateways=True))
    body = {"model": "@cf/meta/llama-3.1-8b-instruct-fast", "messages": [{"role": "user", "content": "hi"}]}
    async with (
        FakeGateway.running(config=fake_config) as fake,
        WorkerBridge.running(config, fake.base_url) as worker,
        httpx.AsyncClient(trust_env=False, timeout=30) as client,
    ):
        answer = await client.post(worker.url, json=body)
        assert answer.status_code == 200
        assert answer.headers["content-type"] == "text/event-stream"
        assert answer.text.count("data:") > 1
        assert await worker.settle() == []


@pytest.mark.skipif(shutil.which("node") is None, reason="the target checks for Node.js first")
def test_the_worker_targets_node_modules_option_is_used_and_checked(no_checkout: Path) -> None:
    from aigw_harness.scenarios.targets import TargetOptions, load_target

    from .conftest import CHAT_WORKER

    chosen = _install(no_checkout / "mine" / "node_modules", miniflare="4.20250705.0", esbuild="0.25.0")
    extra = {"config": str(CHAT_WORKER), "env": "dev", "node_modules": str(chosen)}
    target = load_target("worker", TargetOptions(extra=extra))
    assert getattr(target, "node_modules", None) == chosen
    _install(chosen, miniflare="5.1.0")
    with pytest.raises(TargetUnavailable, match=r"node_modules=.*miniflare 5\.1\.0 is newer than supported"):
        load_target("worker", TargetOptions(extra=extra))
