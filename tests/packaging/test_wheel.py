"""The wheel as a user installs it: built from this tree, installed into a fresh virtual environment outside
the repository, then used the way a user would: the catalogue run, the fake served to an official SDK, and
a consumer project's own pytest with the plugin.

Offline: the wheel is built without build isolation and installed without dependencies; the fresh
environment sees the dependencies of the development environment through a path entry (not through its
``.pth`` files, so the editable install of this tree stays invisible and every ``harness`` and ``fakes``
import comes from the installed wheel).
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def _run(*args: str | Path, cwd: Path, timeout: float = 300, env: dict[str, str] | None = None):
    return subprocess.run(
        [str(a) for a in args], cwd=cwd, capture_output=True, text=True, timeout=timeout, env=env
    )


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A fresh environment with the wheel installed; returns its ``bin`` folder."""
    work = tmp_path_factory.mktemp("wheel")
    built = _run(
        sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q",
        "-w", work / "dist", ROOT, cwd=work,
    )  # fmt: skip
    assert built.returncode == 0, built.stderr
    [wheel] = (work / "dist").glob("aigw_harness-*.whl")
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
