"""The folders harness/ and fakes/ install under the import names aigw_harness and aigw_fakes; the package
list in pyproject.toml must name every package folder, or a subpackage would be missing from the wheel."""

from __future__ import annotations

import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _config() -> dict[str, object]:
    with (ROOT / "pyproject.toml").open("rb") as handle:
        setuptools: dict[str, object] = tomllib.load(handle)["tool"]["setuptools"]
    return setuptools


def test_every_package_folder_is_listed_under_its_import_name() -> None:
    config = _config()
    package_dir = config["package-dir"]
    assert package_dir == {"aigw_harness": "harness", "aigw_fakes": "fakes"}
    on_disk = {
        ".".join((name, *init.parent.relative_to(ROOT / folder).parts))
        for name, folder in package_dir.items()
        for init in (ROOT / folder).rglob("__init__.py")
        if "__pycache__" not in init.parts
    }
    assert set(config["packages"]) == on_disk  # type: ignore[arg-type]


def test_the_type_checker_sees_the_import_names() -> None:
    for name, folder in {"aigw_harness": "harness", "aigw_fakes": "fakes"}.items():
        link = ROOT / ".typecheck" / name
        assert link.is_symlink()
        assert link.resolve() == (ROOT / folder).resolve()
