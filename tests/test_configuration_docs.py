"""docs/configuration.md is what `python -m app.config_docs` generates from the settings:
a variable added, renamed or given another default without the page is a failure."""

from pathlib import Path

from app.config_docs import render

PAGE = Path(__file__).parents[1] / "docs" / "configuration.md"


def test_the_configuration_page_matches_the_settings() -> None:
    assert PAGE.read_text() == render(), "run: python -m app.config_docs > docs/configuration.md"


def test_every_variable_says_what_it_does() -> None:
    rows = [line for line in render().splitlines() if line.startswith("| `")]
    assert len(rows) > 40
    assert [row for row in rows if row.endswith("| — |")] == []


def test_the_readme_lists_every_event_type() -> None:
    from app.domain.webhook.schemas import EVENT_TYPES

    readme = (Path(__file__).parents[1] / "README.md").read_text()
    assert [name for name in EVENT_TYPES if f"`{name}`" not in readme] == []
