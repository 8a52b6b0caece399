"""Fixtures for the gateway-feature tests: a running fake on a loopback port with a clock the test moves.

Every fake is started and stopped by the test that uses it; delays are compressed with ``time_scale``.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest
import pytest_asyncio

from aigw_fakes.clock import ManualClock
from aigw_fakes.server import FakeGateway

from .support import START, make_config


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(START)


@pytest_asyncio.fixture
async def fake(clock: ManualClock) -> AsyncIterator[FakeGateway]:
    async with FakeGateway.running(make_config(clock)) as running:
        yield running


@pytest_asyncio.fixture
async def client(fake: FakeGateway) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=fake.base_url, timeout=10) as http:
        yield http
