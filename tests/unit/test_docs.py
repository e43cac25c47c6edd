"""The README documents every setting a user can change."""

from pathlib import Path

from persona_infra.settings import Settings

README = (Path(__file__).resolve().parents[2] / "README.md").read_text()


def test_every_setting_is_in_the_readme_configuration_table() -> None:
    missing = [name.upper() for name in Settings.model_fields if f"`{name.upper()}`" not in README]
    assert not missing, f"document these in README.md's configuration table: {missing}"
