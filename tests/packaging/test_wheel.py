"""The wheel as a user installs it: built from this tree, installed into a fresh virtual environment outside
the repository, then used the way a user would: the catalogue run, the fake served to an official SDK, and
a consumer project's own pytest with the plugin.

Offline: the wheel is built without build isolation and installed without dependencies; the fresh
environment sees the dependencies of the development environment through a path entry (not through its
``.pth`` files, so the editable install of this tree stays invisible and every ``harness`` and ``fakes``
import comes from the installed wheel).
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import socket
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

import pytest

from tests.packaging.source import source_copy

ROOT = Path(__file__).resolve().parents[2]


def _run(*args: str | Path, cwd: Path, timeout: float = 300, env: dict[str, str] | None = None):
    return subprocess.run(
        [str(a) for a in args], cwd=cwd, capture_output=True, text=True, timeout=timeout, env=env
    )


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A fresh environment with the wheel installed; returns its ``bin`` folder."""
    work = tmp_path_factory.mktemp("wheel")
    source = source_copy(work / "source")
    built = _run(
        sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q",
        "-w", work / "dist", source, cwd=work,
    )  # fmt: skip
    assert built.returncode == 0, built.stderr
    [wheel] = (work / "dist").glob("aigw_harness-*.whl")
    (work / "wheel-files.txt").write_text("\n".join(zipfile.ZipFile(wheel).namelist()), encoding="utf-8")
    venv = work / "venv"
    made = _run(sys.executable, "-m", "venv", venv, cwd=work)
    assert made.returncode == 0, made.stderr
    python = venv / "bin" / "python"
    site_packages = Path(
        _run(python, "-c", "import sysconfig; print(sysconfig.get_path('purelib'))", cwd=work).stdout.strip()
    )
    (site_packages / "zz_development_dependencies.pth").write_text(
        sysconfig.get_path("purelib") + "\n", encoding="utf-8"
    )
    done = _run(python, "-m", "pip", "install", "-q", "--no-deps", "--no-index", wheel, cwd=work)
    assert done.returncode == 0, done.stderr
    return venv / "bin"


def _outside(tmp_path: Path) -> Path:
    folder = tmp_path / "elsewhere"
    folder.mkdir()
    return folder


def test_the_wheel_has_every_file_of_the_packages(installed: Path) -> None:
    """Built from a clean copy of the source: every file under harness/ and fakes/ (modules, templates,
    profiles, the Worker bridge's JS) is in the wheel under its import name."""
    in_wheel = set((installed.parents[1] / "wheel-files.txt").read_text(encoding="utf-8").splitlines())
    names = {"harness": "aigw_harness", "fakes": "aigw_fakes"}
    missing = [
        f"{names[folder]}/{path.relative_to(ROOT / folder).as_posix()}"
        for folder in names
        for path in (ROOT / folder).rglob("*")
        if path.is_file() and "__pycache__" not in path.parts
    ]
    assert [name for name in missing if name not in in_wheel] == []


def test_imports_come_from_the_wheel(installed: Path, tmp_path: Path) -> None:
    where = _run(
        installed / "python", "-c",
        "import aigw_harness, aigw_fakes; print(aigw_harness.__file__); print(aigw_fakes.__file__)",
        cwd=_outside(tmp_path),
    )  # fmt: skip
    assert where.returncode == 0, where.stderr
    for line in where.stdout.splitlines():
        assert str(ROOT) not in line
        assert "site-packages" in line


def test_aigw_run_finds_the_catalogue_anywhere(installed: Path, tmp_path: Path) -> None:
    folder = _outside(tmp_path)
    listed = _run(installed / "aigw", "list", cwd=folder)
    assert listed.returncode == 0, listed.stderr
    ids = [line.split()[1] for line in listed.stdout.splitlines() if line.strip()]
    assert "spike.connectivity" in ids
    catalogue = installed.parent / "share" / "aigw-harness" / "scenarios"
    assert (catalogue / "schema.json").is_file()
    assert any((catalogue / "tenants").glob("*.json"))
    chosen = [catalogue / "spike-connectivity.yaml", catalogue / "streaming-contract.yaml"]
    ran = _run(installed / "aigw", "run", "--out", "out", "-q", *chosen, cwd=folder)
    assert ran.returncode in (0, 1), ran.stderr
    results = json.loads((folder / "out" / "results.json").read_text(encoding="utf-8"))
    assert results["summary"]["total"] == 2
    assert results["summary"]["error"] == 0
    assert (folder / "out" / "report.html").is_file()


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_fake_serve_answers_the_official_sdk(installed: Path, tmp_path: Path) -> None:
    folder = _outside(tmp_path)
    port = _free_port()
    server = subprocess.Popen(
        [str(installed / "aigw"), "fake", "serve", "--port", str(port), "--log-level", "warning"],
        cwd=folder, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        script = f"""
import time, openai
from aigw_fakes.config import DEFAULT_ACCOUNT_ID, DEFAULT_API_TOKEN
base = "http://127.0.0.1:{port}/client/v4/accounts/" + DEFAULT_ACCOUNT_ID + "/ai/v1"
client = openai.OpenAI(base_url=base, api_key=DEFAULT_API_TOKEN, max_retries=0)
for _ in range(100):
    try:
        answer = client.chat.completions.create(model="@cf/meta/llama-3.1-8b-instruct-fast",
                                                messages=[{{"role": "user", "content": "hello"}}])
        break
    except openai.APIConnectionError:
        time.sleep(0.1)
print(answer.choices[0].message.content)
"""
        called = _run(installed / "python", "-c", script, cwd=folder, timeout=120)
        assert called.returncode == 0, called.stderr
        assert called.stdout.strip()
    finally:
        server.terminate()
        server.wait(timeout=10)


def test_a_consumer_with_own_harness_and_fakes_uses_the_plugin(installed: Path, tmp_path: Path) -> None:
    """The import names are aigw_harness and aigw_fakes: a project's own ``harness`` and ``fakes`` (common
    names for test helpers) stay its own, first on the path, while the plugin and its fixtures work."""
    project = _outside(tmp_path)
    (project / "harness.py").write_text('OWNER = "consumer harness"\n', encoding="utf-8")
    (project / "fakes").mkdir()
    (project / "fakes" / "__init__.py").write_text('OWNER = "consumer fakes"\n', encoding="utf-8")
    (project / "conftest.py").write_text("import fakes\nimport harness\n", encoding="utf-8")
    (project / "test_mine.py").write_text(
        """
import uuid

import fakes
import harness
import pytest


def test_my_modules_are_mine():
    assert harness.OWNER == "consumer harness"
    assert fakes.OWNER == "consumer fakes"


@pytest.mark.asyncio
async def test_the_plugin_still_serves(aigw_chat_url, aigw_sse_client):
    body = {"sessionId": str(uuid.uuid4()), "message": "hello"}
    headers = {"x-tenant-id": "example"}
    async with aigw_sse_client.stream(f"{aigw_chat_url}/chat", json=body, headers=headers) as stream:
        await stream.read()
    stream.assert_contract()
""",
        encoding="utf-8",
    )
    env = {**os.environ, "PYTHONDONTWRITEBYTECODE": "1"}
    ran = _run(
        installed / "python", "-m", "pytest", "-q", "-p", "no:cacheprovider", "--rootdir", project, project,
        cwd=project, env=env,
    )  # fmt: skip
    assert ran.returncode == 0, ran.stdout + ran.stderr
    assert "2 passed" in ran.stdout


def _js_path(installed: Path, folder: Path) -> Path:
    printed = _run(installed / "aigw", "worker", "js-path", cwd=folder)
    assert printed.returncode == 0, printed.stderr
    return Path(printed.stdout.strip())


def test_the_worker_bridge_ships_its_npm_files(installed: Path, tmp_path: Path) -> None:
    folder = _outside(tmp_path)
    package = _js_path(installed, folder)
    assert str(package).startswith(str(installed.parent))
    for name in ("package.json", "ai-binding.mjs", "runner.mjs", "clock-shim.mjs"):
        assert (package / name).is_file(), name
    assert json.loads((package / "package.json").read_text())["name"] == "@aigw-harness/worker-bridge"
    printed = _run(installed / "aigw", "worker", "setup", "--print", cwd=folder)
    assert printed.returncode == 0, printed.stderr
    cache, copy, command = printed.stdout.splitlines()
    for manifest in copy.split()[5:7]:
        assert Path(manifest).is_file()
        assert str(installed.parent) in manifest
    assert command.startswith(f"npm ci --prefix {cache} ")


def _worker_project(folder: Path) -> Path:
    project = folder / "my-worker"
    shutil.copytree(ROOT / "tests" / "worker" / "fixtures" / "passthrough", project)
    return project


_SERVE_ONE = """
import asyncio, sys
import httpx
from aigw_fakes.config import FakeConfig, FidelityOptions
from aigw_fakes.server import FakeGateway
from aigw_harness.worker.bridge import WorkerBridge
from aigw_harness.worker.node_packages import find_node_packages
from aigw_harness.worker.wrangler import load_worker_config

async def main():
    config = load_worker_config(sys.argv[1])
    print(find_node_packages([config.source.parent]).source)
    fake_config = FakeConfig(fidelity=FidelityOptions(auto_create_gateways=True))
    async with (
        FakeGateway.running(config=fake_config) as fake,
        WorkerBridge.running(config, fake.base_url) as worker,
    ):
        messages = [{"role": "user", "content": "hi"}]
        body = {"model": "@cf/meta/llama-3.1-8b-instruct-fast", "messages": messages}
        async with httpx.AsyncClient(trust_env=False) as client:
            answer = await client.post(worker.url, json=body, timeout=30)
        print(answer.status_code, answer.headers["content-type"], answer.text.count("data:"))

asyncio.run(main())
"""


@pytest.mark.skipif(
    shutil.which("node") is None or not (ROOT / "node_modules" / "miniflare").is_dir(),
    reason="needs Node.js and this checkout's npm packages (npm ci)",
)
def test_a_pip_users_worker_runs_with_its_own_node_modules(installed: Path, tmp_path: Path) -> None:
    folder = _outside(tmp_path)
    project = _worker_project(folder)
    env = {**os.environ, "AIGW_CACHE_DIR": str(folder / "cache"), "PYTHONDONTWRITEBYTECODE": "1"}
    env.pop("AIGW_NODE_MODULES", None)
    refused = _run(
        installed / "aigw", "worker", "serve", "--config", project, "--upstream", "http://127.0.0.1:9",
        cwd=folder, env=env,
    )  # fmt: skip
    assert refused.returncode == 2
    assert "run 'aigw worker setup' to install the versions this harness pins" in refused.stderr
    assert "npm ci" not in refused.stderr
    assert "Traceback" not in refused.stderr
    # The project's own packages, as Wrangler brings them (here: this checkout's, linked in).
    (project / "node_modules").symlink_to(ROOT / "node_modules")
    served = _run(installed / "python", "-c", _SERVE_ONE, project / "wrangler.jsonc", cwd=folder, env=env)
    assert served.returncode == 0, served.stderr[-3000:]
    source, answer = served.stdout.splitlines()[-2:]
    assert source == "the Worker project"
    status, content_type, frames = answer.split()
    assert (status, content_type) == ("200", "text/event-stream")
    assert int(frames) > 1


@pytest.mark.skipif(shutil.which("npm") is None or shutil.which("node") is None, reason="needs Node.js")
async def test_the_adapter_from_the_wheel_imports_by_name(installed: Path, tmp_path: Path) -> None:
    """docs/worker-bridge.md's install command, run in a Worker project's test folder with the wheel's
    ``aigw`` first on PATH (npm offline: the package has no dependencies), then its import by name."""
    from aigw_fakes.config import FakeConfig, FidelityOptions
    from aigw_fakes.server import FakeGateway
    from tests.docs.blocks import named
    from tests.worker.test_node_packages import CONSUMER_TEST

    project = _outside(tmp_path)
    (project / "package.json").write_text('{"name": "my-worker", "private": true, "type": "module"}\n')
    (project / "ai.test.mjs").write_text(CONSUMER_TEST)
    command = named("docs/worker-bridge.md", "install-adapter").text
    env = {
        **os.environ,
        "PATH": f"{installed}{os.pathsep}{os.environ['PATH']}",
        "npm_config_offline": "true",
        "npm_config_audit": "false",
        "npm_config_fund": "false",
        "npm_config_update_notifier": "false",
    }
    done = _run("bash", "-e", "-u", "-c", command, cwd=project, env=env)
    assert done.returncode == 0, done.stdout + done.stderr
    copied = project / "node_modules" / "@aigw-harness" / "worker-bridge"
    assert not copied.is_symlink()  # --install-links: a copy, independent of the environment
    assert (copied / "ai-binding.mjs").read_bytes() == (
        _js_path(installed, project) / "ai-binding.mjs"
    ).read_bytes()
    manifest = json.loads((project / "package.json").read_text())
    assert manifest["devDependencies"]["@aigw-harness/worker-bridge"].startswith("file:")
    config = FakeConfig(fidelity=FidelityOptions(auto_create_gateways=True))
    async with FakeGateway.running(config=config) as fake:
        process = await asyncio.create_subprocess_exec(
            str(shutil.which("node")), "--test", "ai.test.mjs", cwd=project,
            env={**os.environ, "AIGW_FAKE_URL": fake.base_url},
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
        )  # fmt: skip
        out, _ = await asyncio.wait_for(process.communicate(), timeout=120)
    assert process.returncode == 0, out.decode()
    assert "# fail 0" in out.decode()


def test_the_extras_are_optional_in_the_wheels_metadata(installed: Path, tmp_path: Path) -> None:
    """A plain install pulls neither mitmproxy nor Locust nor uvloop; each comes with its extra."""
    script = "import json, importlib.metadata as m; print(json.dumps(m.requires('aigw-harness')))"
    listed = _run(installed / "python", "-c", script, cwd=_outside(tmp_path))
    assert listed.returncode == 0, listed.stderr
    requires = json.loads(listed.stdout)
    unconditional = {r.split(";")[0].split(">")[0].split("=")[0].strip() for r in requires if ";" not in r}
    assert {"pytest", "pytest-asyncio", "httpx", "jinja2"} <= unconditional
    assert not {"mitmproxy", "locust", "uvloop"} & unconditional
    for extra, package in {"proxy": "mitmproxy", "load": "locust", "speed": "uvloop"}.items():
        assert any(r.startswith(package) and f'extra == "{extra}"' in r for r in requires), (extra, requires)
