"""The Logs API query language: filters, search, ordering, paging, deprecated flat parameters."""

from __future__ import annotations

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from aigw_fakes.api.logfilters import (
    LogQueryError,
    matches,
    order_logs,
    page_logs,
    parse_filters,
    parse_log_query,
)
from aigw_fakes.state.logs import GatewayLog

T0 = 1_790_000_000.0


def log(index: int, **fields: object) -> GatewayLog:
    base: dict[str, object] = {
        "id": f"01J{index:023d}",
        "created_at": T0 + index,
        "provider": "workers-ai",
        "model": "@cf/meta/llama-3.1-8b-instruct-fp8-fast",
        "path": "workers-ai/@cf/meta/llama-3.1-8b-instruct-fp8-fast",
        "status_code": 200,
        "success": True,
        "tokens_in": 10 * index,
        "tokens_out": index,
        "cost": 0.001 * index,
        "metadata": {"tenant": f"t{index % 2}", "user": f"u-{index}"},
    }
    base.update(fields)
    return GatewayLog(**base)  # type: ignore[arg-type]


LOGS = [log(i) for i in range(1, 7)] + [log(7, success=False, status_code=429, cost=0.0, cached=False)]


def select(**params: str) -> list[str]:
    query = parse_log_query(params)
    chosen = [entry for entry in LOGS if matches(entry, query)]
    return [entry.id[-1] for entry in page_logs(order_logs(chosen, query), query).items]


def filters(*items: dict[str, object]) -> str:
    return json.dumps(list(items))


def test_default_order_is_newest_first_twenty_a_page() -> None:
    assert select() == ["7", "6", "5", "4", "3", "2", "1"]
    assert select(order_by_direction="asc", per_page="3", page="2") == ["4", "5", "6"]
    assert select(per_page="3", page="9") == []  # past the end: empty, which stops auto-pagination


@pytest.mark.parametrize(
    ("flt", "expected"),
    [
        ({"key": "success", "operator": "eq", "value": [False]}, ["7"]),
        ({"key": "success", "operator": "eq", "value": ["true"]}, list("654321")),
        ({"key": "tokens_in", "operator": "gt", "value": [40]}, ["7", "6", "5"]),
        ({"key": "tokens", "operator": "lt", "value": [23]}, ["2", "1"]),
        ({"key": "metadata.value", "operator": "eq", "value": ["u-3", "u-4"]}, ["4", "3"]),
        ({"key": "metadata.key", "operator": "eq", "value": ["tenant"]}, list("7654321")),
        ({"key": "metadata.value", "operator": "neq", "value": ["t1"]}, ["6", "4", "2"]),
        ({"key": "model", "operator": "contains", "value": ["LLAMA"]}, list("7654321")),
        ({"key": "id", "operator": "eq", "value": [f"01J{5:023d}"]}, ["5"]),
        ({"key": "created_at", "operator": "lt", "value": ["2026-09-21T14:13:23Z"]}, ["2", "1"]),
    ],
)
def test_filters(flt: dict[str, object], expected: list[str]) -> None:
    assert select(filters=filters(flt)) == expected


def test_filters_combine_with_and_and_metadata_key_and_value_match_independently() -> None:
    both = filters(
        {"key": "metadata.key", "operator": "eq", "value": ["user"]},
        {"key": "metadata.value", "operator": "eq", "value": ["t0"]},
    )
    assert select(filters=both) == ["6", "4", "2"]


def test_search_matches_metadata_values_case_insensitively() -> None:
    assert select(search="U-6") == ["6"]


def test_date_bounds_and_deprecated_flat_parameters() -> None:
    assert select(start_date="2026-09-21T14:13:23Z", end_date="2026-09-21T14:13:25Z") == ["5", "4", "3"]
    assert select(min_cost="0.004", max_cost="0.0055") == ["5", "4"]
    assert select(success="false") == ["7"]
    assert select(min_total_tokens="60") == ["7", "6"]


def test_ordering_by_other_keys_breaks_ties_by_time() -> None:
    assert select(order_by="success", order_by_direction="asc") == ["7", "1", "2", "3", "4", "5", "6"]


def test_an_invalid_filter_key_is_refused_as_cloudflare_does() -> None:
    with pytest.raises(LogQueryError) as caught:
        parse_filters(filters({"key": "tenant", "operator": "eq", "value": ["a"]}))
    assert caught.value.code == 7001
    assert caught.value.field == "filters[0].key"
    assert caught.value.message.startswith(
        "filters[0].key: Invalid enum value. Expected 'id' | 'created_at' | 'request_content_type'"
    )
    assert caught.value.message.endswith(", received 'tenant'")


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"filters": "not json"}, "filters"),
        ({"filters": '{"key": "id"}'}, "filters"),
        ({"filters": filters({"key": "id", "operator": "like", "value": ["a"]})}, "filters[0].operator"),
        ({"filters": filters({"key": "id", "operator": "eq", "value": []})}, "filters[0].value"),
        ({"filters": filters({"key": "id", "operator": "eq", "value": [{"a": 1}]})}, "filters[0].value[0]"),
        ({"order_by": "cost"}, "order_by"),
        ({"order_by_direction": "up"}, "order_by_direction"),
        ({"page": "0"}, "page"),
        ({"per_page": "many"}, "per_page"),
        ({"start_date": "yesterday"}, "start_date"),
        ({"meta_info": "perhaps"}, "meta_info"),
    ],
)
def test_bad_parameters_name_the_parameter(params: dict[str, str], field: str) -> None:
    with pytest.raises(LogQueryError) as caught:
        parse_log_query(params)
    assert caught.value.field == field
    assert caught.value.message.startswith(field)


def test_per_page_is_clamped_to_fifty_and_delete_accepts_more_order_keys() -> None:
    assert parse_log_query({"per_page": "500"}).per_page == 50
    assert parse_log_query({"order_by": "cost", "limit": "3"}, for_delete=True).limit == 3


log_sets = st.lists(
    st.builds(
        log,
        st.integers(min_value=1, max_value=60),
        success=st.booleans(),
        cached=st.booleans(),
        model=st.sampled_from(["@cf/a", "@cf/b", "@cf/c"]),
        tokens_in=st.none() | st.integers(0, 100),
        metadata=st.none()
        | st.dictionaries(st.sampled_from(["tenant", "user"]), st.sampled_from(["x", "y"])),
    ),
    max_size=25,
)
scalar_filters = st.sampled_from(
    [("success", True), ("cached", False), ("model", "@cf/b"), ("tokens_in", 50), ("metadata.value", "x")]
)


@given(log_sets, scalar_filters)
def test_eq_and_neq_split_the_logs_in_two(logs: list[GatewayLog], key_value: tuple[str, object]) -> None:
    key, value = key_value
    eq = parse_log_query({"filters": filters({"key": key, "operator": "eq", "value": [value]})})
    neq = parse_log_query({"filters": filters({"key": key, "operator": "neq", "value": [value]})})
    for entry in logs:
        assert matches(entry, eq) != matches(entry, neq)


@given(log_sets, st.integers(min_value=1, max_value=7), st.sampled_from(["asc", "desc"]))
def test_pages_concatenate_to_the_ordered_list(logs: list[GatewayLog], per_page: int, direction: str) -> None:
    base = {"per_page": str(per_page), "order_by": "model", "order_by_direction": direction}
    everything = order_logs(logs, parse_log_query(base))
    pages: list[GatewayLog] = []
    for number in range(1, len(logs) // per_page + 3):
        pages += page_logs(everything, parse_log_query({**base, "page": str(number)})).items
    assert pages == everything
    keys = [entry.model for entry in everything]
    assert keys == sorted(keys, reverse=direction == "desc")
