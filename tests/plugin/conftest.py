"""Inner pytest runs get the settings the project's own run has, so that they warn about nothing."""

from __future__ import annotations

import pytest

INNER_INI = """
[pytest]
asyncio_default_fixture_loop_scope = function
"""


@pytest.fixture(autouse=True)
def _inner_ini(request: pytest.FixtureRequest) -> None:
    if "pytester" in request.fixturenames:
        request.getfixturevalue("pytester").makeini(INNER_INI)
