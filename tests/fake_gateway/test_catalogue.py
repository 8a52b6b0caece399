"""The model catalogue: built-in models, and models added or replaced from a file."""

from __future__ import annotations

from pathlib import Path

import pytest
from fake_helpers import NATIVE, auth, gateway_path, make_config, serving

from aigw_fakes.datafiles import DataFileError
from aigw_fakes.models.catalogue import Catalogue
from aigw_fakes.state.fake import FakeState


def test_builtin_catalogue_has_both_shapes_with_rates() -> None:
    catalogue = Catalogue.builtin()
    native = [m.id for m in catalogue if m.shape == "native"]
    chat = [m.id for m in catalogue if m.shape == "chat"]
    assert {
        "@cf/meta/llama-3.1-8b-instruct",
        "@cf/meta/llama-3.1-8b-instruct-fast",
        "@cf/meta/llama-3.2-3b-instruct",
        "@cf/meta/llama-3.3-70b-instruct-fp8-fast",
    } <= set(native)
    assert len(chat) >= 2
    priced = [m for m in catalogue if m.neurons_per_m_input is not None]
    assert all(m.neurons_per_m_input and m.neurons_per_m_output for m in priced)
    # A model without known rates says so, rather than carrying invented ones.
    assert all("rates not known" in m.source for m in catalogue if m not in priced)


async def test_a_catalogue_file_adds_and_replaces_models(tmp_path: Path) -> None:
    path = tmp_path / "models.yaml"
    path.write_text(
        "models:\n"
        "  - id: '@cf/acme/tiny-chat'\n    shape: chat\n    neurons_per_m_input: 1000000\n"
        "    neurons_per_m_output: 2000000\n"
        f"  - id: '{NATIVE}'\n    shape: native\n    neurons_per_m_input: 0\n    neurons_per_m_output: 0\n"
        "    usage_in_output: false\n"
    )
    async with serving(make_config(catalogue_file=str(path))) as (_, http):
        headers = {**auth(), "x-aigw-behaviour": '{"prompt_tokens": 3, "tokens": 2}'}
        body = {"messages": [{"role": "user", "content": "hi"}]}
        response = await http.post(gateway_path("workers-ai/@cf/acme/tiny-chat"), json=body, headers=headers)
        assert response.json()["result"]["usage"]["neurons"] == 7.0
        replaced = await http.post(gateway_path(f"workers-ai/{NATIVE}"), json={"prompt": "x"}, headers=auth())
        assert "usage" not in replaced.json()["result"]


def test_a_catalogue_file_with_mistakes_names_line_and_field(tmp_path: Path) -> None:
    path = tmp_path / "models.yaml"
    path.write_text("models:\n  - id: not-a-model-id\n    shape: images\n    retired_on: someday\n")
    with pytest.raises(DataFileError) as caught:
        FakeState(make_config(catalogue_file=str(path)))
    message = str(caught.value)
    assert f"{path}:2: models[0].id: String should match pattern" in message
    assert f"{path}:3: models[0].shape: Input should be 'native' or 'chat'" in message
    assert f"{path}:4: models[0].retired_on: Input should be a valid date" in message
