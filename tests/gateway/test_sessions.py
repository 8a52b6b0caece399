"""The session store against a model of the platform's session Durable Object: appends prune messages
older than the retention and keep the newest ``max_messages``; a history read returns the newest ``limit``,
oldest first."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from aigw_harness.gateway.clock import ManualClock
from aigw_harness.gateway.sessions import SessionStore

_DAY = 24 * 60 * 60

# Each step: seconds the clock moves on (the clock may also be set back, as a test clock can be), then
# an append, or a history read with a limit.
steps = st.lists(
    st.tuples(
        st.integers(min_value=-_DAY, max_value=3 * _DAY),
        st.one_of(st.just("append"), st.integers(min_value=0, max_value=6)),
    ),
    max_size=30,
)


@given(steps, st.integers(min_value=1, max_value=3), st.integers(min_value=1, max_value=5))
def test_appends_and_reads_match_the_model(
    script: list[tuple[int, str | int]], retention_days: int, max_messages: int
) -> None:
    clock = ManualClock(1_700_000_000.0)
    store = SessionStore(clock)
    model: list[tuple[int, str]] = []  # (timestamp ms, content) of every append
    for number, (move, action) in enumerate(script):
        clock.set(clock.now() + move)
        now_ms = int(clock.now() * 1000)
        cutoff = now_ms - retention_days * _DAY * 1000
        if action == "append":
            content = f"m{number}"
            store.append("t:s", "user", content, retention_days=retention_days, max_messages=max_messages)
            model.append((now_ms, content))
            kept = sorted((m for m in model if m[0] >= cutoff), key=lambda m: m[0])[-max_messages:]
            model = kept
            assert [(m.timestamp, m.content) for m in store.stored("t:s")] == model
        else:
            history = store.history(
                "t:s", limit=int(action), retention_days=retention_days, max_messages=max_messages
            )
            # A read prunes what it finds and keeps the pruned list, as the Durable Object writes it back.
            if model:
                model = sorted((m for m in model if m[0] >= cutoff), key=lambda m: m[0])[-max_messages:]
            expected = model[-int(action) :] if int(action) else []
            assert [(m.timestamp, m.content) for m in history] == expected
