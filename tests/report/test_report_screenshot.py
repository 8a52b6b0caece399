"""The HTML report as a person sees it: rendered by headless Chromium, scripts run, charts with marks.

A real run of two streaming scenarios gives the report real charts. Chromium (Debian's, installed by
scripts/setup.sh) loads the page from disk with the network off, dumps the DOM after the filter script ran,
and takes a screenshot, which must be a PNG that is not blank. The screenshot is kept as
reports/screenshots/report.png, so that a CI run leaves the page as Chromium drew it for a person to look at.
"""

from __future__ import annotations

import shutil
import struct
import subprocess
import sys
import zlib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
FLAGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]  # fmt: skip

pytestmark = pytest.mark.skipif(
    CHROMIUM is None, reason="chromium is not installed (scripts/setup.sh installs it)"
)


@pytest.fixture(scope="module")
def report(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("report")
    scenarios = [
        ROOT / "scenarios" / "streaming-concurrent.yaml",
        ROOT / "scenarios" / "spike-streaming.yaml",
    ]
    done = subprocess.run(
        [sys.executable, "-m", "aigw_harness", "run", "--out", str(out), "-q", *map(str, scenarios)],
        cwd=ROOT, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert done.returncode in (0, 1), done.stderr
    return out / "report.html"


def _chromium(tmp: Path, *args: str) -> subprocess.CompletedProcess[str]:
    assert CHROMIUM is not None
    return subprocess.run(
        [CHROMIUM, *FLAGS, f"--user-data-dir={tmp / 'profile'}", *args],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip


def test_the_page_renders_with_its_script_and_charts_have_marks(report: Path, tmp_path: Path) -> None:
    dom = _chromium(tmp_path, "--dump-dom", report.as_uri())
    assert dom.returncode == 0, dom.stderr[-2000:]
    page = dom.stdout
    assert 'data-filters="ready"' in page  # the filter script ran
    assert '<form class="filters" id="filters">' in page  # and showed the filters
    assert page.count('class="series"') >= 2  # token-arrival lines
    assert page.count('class="bar"') >= 1  # a time-to-first-token histogram per scenario
    assert page.count('class="marker"') >= 2  # its p50 and p95, the marks its legend names
    assert page.count('class="seg ') >= 1  # the overview's bars


def _png_pixels(path: Path) -> tuple[int, int, bytes]:
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    width, height = struct.unpack(">II", data[16:24])
    chunks, offset = b"", 8
    while offset < len(data):
        (length,) = struct.unpack(">I", data[offset : offset + 4])
        kind = data[offset + 4 : offset + 8]
        if kind == b"IDAT":
            chunks += data[offset + 8 : offset + 8 + length]
        offset += 12 + length
    return width, height, zlib.decompress(chunks)


def test_the_screenshot_is_not_blank(report: Path, tmp_path: Path) -> None:
    shot = tmp_path / "report.png"
    done = _chromium(tmp_path, "--window-size=1200,1600", f"--screenshot={shot}", report.as_uri())
    assert done.returncode == 0, done.stderr[-2000:]
    width, height, pixels = _png_pixels(shot)
    assert (width, height) == (1200, 1600)
    assert len(set(pixels)) > 32  # text, colours and charts: far more than a blank page's few values
    kept = ROOT / "reports" / "screenshots"
    kept.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(shot, kept / "report.png")
