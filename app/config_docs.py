"""``docs/configuration.md``, generated from ``Settings`` so that it cannot drift from the
code: every environment variable, its default and the comment above its field.

``python -m app.config_docs`` prints it; ``tests/test_configuration_docs.py`` fails when
the file in ``docs/`` differs.
"""

import ast
import inspect
import sys
from typing import Any

from pydantic.fields import FieldInfo
from pydantic_core import PydanticUndefined

from app import config
from app.config import Settings

HEADER = """# Configuration

Every environment variable the Purser server reads, with its default. Generated from
`app.config.Settings` by `python -m app.config_docs` (a test fails when this file differs).
Outside the server: the Python SDK and `purser demo` read `PURSER_API_KEY` and
`PURSER_BASE_URL`; the tests read `TEST_DATABASE_URL`, the benchmarks `BENCH_DATABASE_URL`
and `make fuzz` `FUZZ_EXAMPLES`, `FUZZ_MAX_TIME`, `FUZZ_SEED` (see the README).

| variable | default | meaning |
|---|---|---|
"""


def _comments() -> dict[str, str]:
    """The ``#:`` comment lines above each field of ``Settings``, joined."""
    source = inspect.getsource(config)
    lines = source.splitlines()
    found: dict[str, str] = {}
    tree = ast.parse(source)
    settings = next(
        node for node in tree.body if isinstance(node, ast.ClassDef) and node.name == "Settings"
    )
    for node in settings.body:
        if isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
            text: list[str] = []
            index = node.lineno - 2
            while index >= 0 and lines[index].strip().startswith("#:"):
                text.insert(0, lines[index].strip().removeprefix("#:").strip())
                index -= 1
            found[node.target.id] = " ".join(text)
    return found


def _names(name: str, field: FieldInfo) -> list[str]:
    alias = field.validation_alias
    if alias is not None and hasattr(alias, "choices"):
        return [str(choice) for choice in alias.choices]
    return [f"PURSER_{name.upper()}"]


def _default(field: FieldInfo) -> str:
    value: Any = field.default
    if value is PydanticUndefined or value is None:
        return "—"
    if hasattr(value, "value"):
        value = value.value
    return f"`{value}`"


def render() -> str:
    comments = _comments()
    rows = []
    for name, field in Settings.model_fields.items():
        names = " / ".join(f"`{env}`" for env in _names(name, field))
        meaning = comments.get(name, "").replace("|", "\\|") or "—"
        rows.append(f"| {names} | {_default(field)} | {meaning} |")
    return HEADER + "\n".join(rows) + "\n"


if __name__ == "__main__":
    sys.stdout.write(render())
