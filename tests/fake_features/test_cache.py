"""The response cache: exact-match keys that ignore metadata, TTL rules, skip, custom keys, streaming."""

from __future__ import annotations

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from aigw_fakes.state.cache import (
    CUSTOM_KEY_DEFAULT_TTL,
    MAX_TTL,
    MIN_TTL,
    CacheDirectives,
    ResponseCache,
    cache_key,
    effective_ttl,
    parse_cache_directives,
)

scalars = st.one_of(st.text(max_size=20), st.integers(), st.booleans())
metadata = st.dictionaries(st.text(min_size=1, max_size=10), scalars, max_size=7)
bodies = st.fixed_dictionaries(
    {"prompt": st.text(max_size=40)}, optional={"max_tokens": st.integers(1, 500), "stream": st.booleans()}
)


def key_for(body: object, headers: dict[str, str]) -> str:
    directives = parse_cache_directives(headers)
    return cache_key(
        account_id="acc",
        gateway_id="gw",
        path="workers-ai/@cf/meta/llama-3.1-8b-instruct-fp8-fast",
        body=json.dumps(body).encode(),
        custom_key=directives.key,
    )


@given(bodies, metadata, metadata)
def test_requests_that_differ_only_in_metadata_share_a_cached_response(
    body: dict[str, object], first: dict[str, object], second: dict[str, object]
) -> None:
    cache = ResponseCache()
    key_a = key_for(body, {"cf-aig-metadata": json.dumps(first)})
    cache.store(key_a, status=200, headers=(), body=b"answer", ttl=300, now=0.0)
    hit = cache.lookup(key_for(body, {"cf-aig-metadata": json.dumps(second)}), now=1.0)
    assert hit is not None
    assert hit.body == b"answer"


@given(
    bodies, st.integers(min_value=-5, max_value=MAX_TTL * 2), st.floats(min_value=0, max_value=MAX_TTL * 3)
)
def test_a_cached_response_lives_exactly_its_ttl(
    body: dict[str, object], header_ttl: int, age: float
) -> None:
    directives = parse_cache_directives({"cf-aig-cache-ttl": str(header_ttl)})
    ttl = effective_ttl(None, directives, streaming=False)
    assert ttl == 0 or MIN_TTL <= ttl <= MAX_TTL
    cache = ResponseCache()
    key = key_for(body, {})
    stored = cache.store(key, status=200, headers=(), body=b"x", ttl=ttl, now=1000.0)
    found = cache.lookup(key, now=1000.0 + age)
    assert stored == (ttl > 0)
    assert (found is not None) == (ttl > 0 and age < ttl)


@given(bodies, st.integers(min_value=0, max_value=3600))
def test_skip_cache_never_caches(body: dict[str, object], gateway_ttl: int) -> None:
    for header in ("cf-aig-skip-cache", "cf-skip-cache"):
        directives = parse_cache_directives({header: "true", "cf-aig-cache-ttl": "600"})
        assert directives.skip
        assert effective_ttl(gateway_ttl, directives, streaming=False) == 0


def test_different_bodies_and_paths_do_not_share_a_key_and_json_is_compared_canonically() -> None:
    base = dict(account_id="a", gateway_id="g", path="p")
    assert cache_key(**base, body=b'{"a":1,"b":2}') == cache_key(**base, body=b'{ "b": 2, "a": 1 }')
    assert cache_key(**base, body=b'{"a":1}') != cache_key(**base, body=b'{"a":2}')
    assert cache_key(**base, body=b"{}") != cache_key(account_id="a", gateway_id="g", path="q", body=b"{}")
    assert cache_key(**base, body=b"{}") != cache_key(account_id="a", gateway_id="h", path="p", body=b"{}")


def test_a_custom_key_replaces_the_body_and_defaults_to_five_minutes_with_caching_off() -> None:
    base = dict(account_id="a", gateway_id="g", path="p")
    assert cache_key(**base, body=b'{"x":1}', custom_key="k") == cache_key(
        **base, body=b'{"x":2}', custom_key="k"
    )
    assert effective_ttl(0, CacheDirectives(key="k"), streaming=False) == CUSTOM_KEY_DEFAULT_TTL == 300
    assert effective_ttl(None, CacheDirectives(), streaming=False) == 0
    assert effective_ttl(120, CacheDirectives(key="k"), streaming=False) == 120


@pytest.mark.parametrize(
    ("gateway_ttl", "header", "streaming", "expected"),
    [
        (0, None, False, 0),
        (3600, None, False, 3600),
        (3600, "0", False, 0),  # a step header of 0 disables caching (Universal example)
        (3600, "30", False, MIN_TTL),
        (0, "120", False, 120),
        (0, str(MAX_TTL + 1), False, MAX_TTL),
        (0, "not a number", False, 0),
        (3600, None, True, 0),  # streaming responses are not cached by default
    ],
)
def test_ttl_rules(gateway_ttl: int, header: str | None, streaming: bool, expected: int) -> None:
    headers = {} if header is None else {"cf-aig-cache-ttl": header}
    assert effective_ttl(gateway_ttl, parse_cache_directives(headers), streaming=streaming) == expected


def test_streams_can_be_cached_when_asked_and_the_binding_quirk_is_opt_in() -> None:
    assert effective_ttl(600, CacheDirectives(), streaming=True, cache_streaming=True) == 600
    assert effective_ttl(0, CacheDirectives(), streaming=False, unkeyed_default_ttl=300) == 300
    assert effective_ttl(0, CacheDirectives(skip=True), streaming=False, unkeyed_default_ttl=300) == 0


def test_only_successes_are_stored_and_the_oldest_entry_goes_first() -> None:
    cache = ResponseCache(max_entries=2)
    assert not cache.store("err", status=500, headers=(), body=b"", ttl=60, now=0)
    for name in ("a", "b", "c"):
        assert cache.store(name, status=200, headers=(), body=name.encode(), ttl=60, now=0, scope="s")
    assert cache.lookup("a", 1) is None
    assert cache.lookup("c", 1) is not None
    assert cache.invalidate("s") == 2
    assert len(cache) == 0
