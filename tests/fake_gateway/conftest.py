"""Fixtures for the fake's tests: a running fake on a loopback port, and an HTTP client for it.

Every fake is started and stopped by the test that uses it. Delays are compressed with ``time_scale``.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest_asyncio
from fake_helpers import make_config

from aigw_fakes.server import FakeGateway


@pytest_asyncio.fixture
async def fake() -> AsyncIterator[FakeGateway]:
    async with FakeGateway.running(make_config()) as running:
        yield running


@pytest_asyncio.fixture
async def client(fake: FakeGateway) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=fake.base_url, timeout=10) as http:
        yield http
