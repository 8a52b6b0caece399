from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from aigw_harness.proxy.redaction import Redactor, marker


def test_values_are_replaced_everywhere_with_a_named_marker(generated: dict[str, str]) -> None:
    redactor = Redactor(dict(generated))
    token = generated["CLOUDFLARE_API_TOKEN"]
    text = f"GET /accounts/{generated['CLOUDFLARE_ACCOUNT_ID']}/x?t={token} failed for {token}"
    out = redactor.text(text)
    assert token not in out
    assert generated["CLOUDFLARE_ACCOUNT_ID"] not in out
    assert out.count(marker("CLOUDFLARE_API_TOKEN")) == 2
    assert redactor.data(text.encode()) == out.encode()


def test_credential_headers_keep_their_scheme_only() -> None:
    redactor = Redactor()
    assert redactor.header_value("Authorization", "Bearer abc.def") == "Bearer [REDACTED:authorization]"
    assert redactor.header_value("cf-aig-authorization", "opaque") == "[REDACTED:cf-aig-authorization]"
    assert redactor.header_value("content-type", "application/json") == "application/json"


def test_repr_never_shows_values(generated: dict[str, str]) -> None:
    redactor = Redactor(dict(generated))
    assert all(value not in repr(redactor) for value in generated.values())


def test_too_short_secret_is_refused() -> None:
    with pytest.raises(
        ValueError, match=r"secret X is too short to redact safely \(3 characters; at least 6"
    ):
        Redactor({"X": "abc"})


def test_a_secret_containing_another_is_replaced_whole() -> None:
    redactor = Redactor({"SHORT": "abcdef", "LONG": "abcdefghij"})
    assert redactor.text("abcdefghij abcdef") == "[REDACTED:LONG] [REDACTED:SHORT]"


@given(
    secret=st.text(st.characters(codec="utf-8", exclude_categories=["Cs"]), min_size=6, max_size=40),
    before=st.text(max_size=30),
    after=st.text(max_size=30),
)
def test_no_secret_survives_text_or_bytes(secret: str, before: str, after: str) -> None:
    redactor = Redactor({"S": secret})
    text = before + secret + after
    assert secret not in redactor.text(text)
    assert secret.encode() not in redactor.data(text.encode())
