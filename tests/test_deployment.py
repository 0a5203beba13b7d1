"""The container files (Dockerfile, .dockerignore, docker-compose.yaml), checked without a
Docker engine.

hadolint lints the Dockerfile. The compose file is validated against the Compose
Specification's JSON schema (the copy check-jsonschema ships, pinned with it) and, where a
Compose v2 client is installed, by ``docker compose config``. The rest is what no linter
knows: the containers run real ``purser`` commands with settings Purser reads, their health
checks ask for routes the API has, the API listens beyond loopback, migrations run once
before the API and the worker, and no secret is written down.
"""

import os
import re
import shutil
import subprocess
import sys
import tomllib
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest
import typer.main
import yaml
from cryptography.fernet import Fernet
from packaging.specifiers import SpecifierSet
from starlette.routing import Match
from typer.core import TyperGroup

from app.cli import cli
from app.config import Settings

ROOT = Path(__file__).parents[1]
DOCKERFILE = ROOT / "Dockerfile"
DOCKERIGNORE = ROOT / ".dockerignore"
COMPOSE = ROOT / "docker-compose.yaml"
OPERATIONS = ROOT / "docs" / "operations.md"

#: The services built from the Dockerfile, and the one that runs once and exits.
PURSER_SERVICES = ("migrate", "api", "worker")
ONE_SHOT = "migrate"

#: Values for the variables the compose file requires (``${NAME:?message}``).
REQUIRED_ENV = {
    "POSTGRES_PASSWORD": "0123456789abcdef" * 4,
    "PURSER_SECRET_KEY": Fernet.generate_key().decode(),
}

#: What Compose accepts after a ``$`` (compose-spec interpolation): ``$$``, ``$NAME``,
#: ``${NAME}``, ``${NAME:-default}``, ``${NAME-default}``, ``${NAME:?message}``,
#: ``${NAME?message}``, ``${NAME:+replacement}``, ``${NAME+replacement}``.
_INTERPOLATION = re.compile(
    r"\$(?:\$|[A-Za-z_][A-Za-z0-9_]*|\{[A-Za-z_][A-Za-z0-9_]*(?:(?::?[-?+])[^}]*)?\})"
)
_REFERENCE = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?:(:?[-?+])([^}]*))?\}")
_SECRET_NAME = re.compile(r"PASSWORD|SECRET|TOKEN|(?:^|_)KEY$")


def _tool(name: str) -> str:
    """The path of a dev tool: this interpreter's virtualenv first, then PATH."""
    found = shutil.which(name, path=str(Path(sys.executable).parent)) or shutil.which(name)
    if found is None:
        pytest.fail(f"{name} is not installed: `make install` installs the dev tools")
    return found


def _compose() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load(COMPOSE.read_text())
    return loaded


def _services() -> dict[str, dict[str, Any]]:
    services: dict[str, dict[str, Any]] = _compose()["services"]
    return services


def _interpolate(value: str, env: Mapping[str, str]) -> str:
    """``value`` as Compose passes it on: each ``${NAME...}`` replaced from ``env``. A
    required variable missing from ``env`` fails the test with Compose's message."""

    def replace(match: re.Match[str]) -> str:
        name, operator, argument = match.group(1), match.group(2), match.group(3)
        current = env.get(name)
        if operator in (":?", "?") and not current:
            pytest.fail(f"required variable {name} is missing a value: {argument}")
        if operator in (":-", "-") and not current:
            return str(argument)
        return current or ""

    return _REFERENCE.sub(replace, value.replace("$$", "\0")).replace("\0", "$")


def _strings(node: object) -> Iterator[str]:
    """Every string anywhere in a parsed YAML document: keys and values."""
    if isinstance(node, str):
        yield node
    elif isinstance(node, dict):
        for key, value in node.items():
            yield from _strings(key)
            yield from _strings(value)
    elif isinstance(node, list):
        for item in node:
            yield from _strings(item)


# --- The Dockerfile, read as Docker reads it ---------------------------------------------


def _dockerfile_stages() -> list[list[tuple[str, str]]]:
    """The Dockerfile's instructions (keyword upper-cased, arguments), stage by stage:
    comment lines dropped, continued lines joined."""
    stages: list[list[tuple[str, str]]] = []
    pending = ""
    for raw in DOCKERFILE.read_text().splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        keyword, _, arguments = (pending + line).partition(" ")
        pending = ""
        if keyword.upper() == "FROM":
            stages.append([])
        stages[-1].append((keyword.upper(), arguments.strip()))
    return stages


def _last(stage: list[tuple[str, str]], keyword: str) -> str:
    found = [arguments for name, arguments in stage if name == keyword]
    assert found, f"no {keyword} instruction"
    return found[-1]


def _image_env() -> dict[str, str]:
    """The ENV of the final stage (``KEY=value`` pairs), as containers start with it."""
    env: dict[str, str] = {}
    for name, arguments in _dockerfile_stages()[-1]:
        if name == "ENV":
            for pair in re.findall(r'(\w+)=("[^"]*"|\S+)', arguments):
                env[pair[0]] = pair[1].strip('"')
    return env


def test_hadolint_finds_nothing_in_the_dockerfile(tmp_path: Path) -> None:
    # A developer's own hadolint configuration (home, XDG) must not silence a rule here.
    env = {**os.environ, "HOME": str(tmp_path), "XDG_CONFIG_HOME": str(tmp_path)}
    result = subprocess.run(
        [_tool("hadolint"), "--no-color", "--failure-threshold", "style", str(DOCKERFILE)],
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
        timeout=60,
    )
    assert (result.returncode, result.stdout, result.stderr) == (0, "", "")


def test_hadolint_reports_an_unpinned_root_image(tmp_path: Path) -> None:
    """The linter above is a real one: it reports what a careless Dockerfile does."""
    careless = tmp_path / "Dockerfile"
    careless.write_text("FROM python:latest\nUSER root\nRUN pip install requests\n")
    result = subprocess.run(
        [_tool("hadolint"), "--no-color", str(careless)],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=60,
    )
    assert result.returncode != 0
    assert {"DL3007", "DL3002", "DL3013"} <= set(re.findall(r"DL\d{4}", result.stdout))


def test_the_image_runs_purser_serve_as_an_unprivileged_user() -> None:
    stages = _dockerfile_stages()
    assert len(stages) >= 2, "a builder stage and a runtime stage"
    final = stages[-1]
    assert _last(final, "ENTRYPOINT") == '["purser"]'
    assert _last(final, "CMD") == '["serve"]'
    user = _last(final, "USER").split(":")[0]
    assert user not in ("root", "0"), user
    assert any(name == "COPY" and "--from=" in arguments for name, arguments in final)
    assert _last(final, "HEALTHCHECK").split()[-1] != "NONE"
    # Inside a container loopback is the container's own: a published port needs 0.0.0.0.
    assert _image_env()["PURSER_HOST"] == "0.0.0.0"


def test_the_base_images_are_pinned_to_the_python_purser_supports() -> None:
    requires = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["requires-python"]
    images = [_last(stage[:1], "FROM").split()[0] for stage in _dockerfile_stages()]
    assert len(set(images)) == 1, f"builder and runtime on one base: {images}"
    match = re.fullmatch(r"python:(\d+\.\d+\.\d+)-slim-[a-z]+", images[0])
    assert match, f"{images[0]}: name the patch release and the Debian release"
    assert match.group(1) in SpecifierSet(requires), (match.group(1), requires)


# --- .dockerignore -----------------------------------------------------------------------


def _pattern(pattern: str) -> re.Pattern[str]:
    """A .dockerignore pattern as a regular expression over slash-separated paths: ``*``
    and ``?`` stay within one path element, ``**`` crosses any number of them."""
    out = ""
    index = 0
    while index < len(pattern):
        if pattern.startswith("**/", index):
            out += "(?:.*/)?"
            index += 3
        elif pattern.startswith("**", index):
            out += ".*"
            index += 2
        elif pattern[index] == "*":
            out += "[^/]*"
            index += 1
        elif pattern[index] == "?":
            out += "[^/]"
            index += 1
        elif pattern[index] == "[":
            end = pattern.index("]", index)
            out += pattern[index : end + 1]
            index = end + 1
        else:
            out += re.escape(pattern[index])
            index += 1
    return re.compile(out)


def _in_build_context(path: str) -> bool:
    """Whether Docker sends ``path`` to the builder: the last .dockerignore pattern that
    matches it or one of its parent folders decides (``!`` keeps)."""
    rules = [
        line.strip()
        for line in DOCKERIGNORE.read_text().splitlines()
        if line.strip() and not line.strip().startswith("#")
    ]
    parts = path.split("/")
    prefixes = ["/".join(parts[: end + 1]) for end in range(len(parts))]
    kept = True
    for rule in rules:
        keep = rule.startswith("!")
        regex = _pattern(rule.removeprefix("!").strip("/"))
        if any(regex.fullmatch(prefix) for prefix in prefixes):
            kept = keep
    return kept


def test_the_build_context_holds_what_the_image_needs_and_no_more() -> None:
    copied = [
        source
        for stage in _dockerfile_stages()
        for name, arguments in stage
        if name == "COPY" and "--from=" not in arguments
        for source in arguments.split()[:-1]
    ]
    assert "app" in copied, copied
    assert "migrations" in copied, copied
    needed = [
        *copied,
        "app/cli.py",
        "migrations/env.py",
        # `purser demo` runs on Purser's SDK, installed in the image.
        "sdk/python/pyproject.toml",
        "sdk/python/src/purser/__init__.py",
        *(str(path.relative_to(ROOT)) for path in (ROOT / "migrations" / "versions").glob("*.py")),
    ]
    assert [path for path in needed if not _in_build_context(path)] == []
    left_out = [
        ".env",
        ".env.example",
        ".git/config",
        ".venv/bin/python",
        ".purser/secret.key",
        ".purser/pg/postgresql.conf",
        "tests/conftest.py",
        "bench/results/ledger.json",
        "sdk/other/package.json",
        "app/__pycache__/cli.cpython-311.pyc",
        "migrations/versions/__pycache__/x.cpython-311.pyc",
        ".mypy_cache/3.11/app.json",
        "docker-compose.yaml",
    ]
    assert [path for path in left_out if _in_build_context(path)] == []


# --- docker-compose.yaml, by the tools that read it -------------------------------------


def _check_compose_schema(path: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [_tool("check-jsonschema"), "--builtin-schema", "vendor.compose-spec", str(path)],
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_the_compose_file_follows_the_compose_specification() -> None:
    result = _check_compose_schema(COMPOSE)
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_compose_schema_check_rejects_a_misspelt_key(tmp_path: Path) -> None:
    """The schema check above is not a formality: an unknown key fails it."""
    broken = tmp_path / "docker-compose.yaml"
    broken.write_text(
        COMPOSE.read_text().replace("\n  worker:\n", "\n  worker:\n    helthcheck: {}\n")
    )
    result = _check_compose_schema(broken)
    assert result.returncode == 1
    assert "helthcheck" in result.stdout


def _compose_v2() -> list[str] | None:
    """A Docker Compose v2 client (the docker plugin, else a standalone binary), if any."""
    for command in (["docker", "compose"], ["docker-compose"]):
        if shutil.which(command[0]) is None:
            continue
        try:
            version = subprocess.run(
                [*command, "version"], capture_output=True, text=True, timeout=30
            )
        except (OSError, subprocess.TimeoutExpired):
            continue
        if version.returncode == 0 and re.search(r"\bv?2\.\d+", version.stdout):
            return command
    return None


def test_docker_compose_config_accepts_the_file(tmp_path: Path) -> None:
    command = _compose_v2()
    if command is None:
        pytest.skip(
            "no Docker Compose v2 client here (`docker compose version` fails); the "
            "compose-spec schema check and the checks below still ran"
        )
    # An empty env file: a developer's .env must not be what makes the file pass.
    empty = tmp_path / "empty.env"
    empty.write_text("")
    base = [*command, "--project-directory", str(ROOT), "--env-file", str(empty)]
    base += ["-f", str(COMPOSE), "config", "--quiet"]
    clean = {key: value for key, value in os.environ.items() if key not in REQUIRED_ENV}
    result = subprocess.run(
        base, capture_output=True, text=True, env={**clean, **REQUIRED_ENV}, timeout=60
    )
    assert result.returncode == 0, result.stderr
    missing = subprocess.run(base, capture_output=True, text=True, env=clean, timeout=60)
    assert missing.returncode != 0
    assert "POSTGRES_PASSWORD" in missing.stderr or "PURSER_SECRET_KEY" in missing.stderr


def test_every_dollar_is_an_interpolation_compose_understands() -> None:
    for text in _strings(_compose()):
        leftover = _INTERPOLATION.sub("", text)
        assert "$" not in leftover, text


# --- docker-compose.yaml, by what Purser needs of it ------------------------------------


def test_long_running_services_restart_and_report_their_health() -> None:
    services = _services()
    assert set(PURSER_SERVICES) | {"postgres"} <= set(services)
    for name, service in services.items():
        if name == ONE_SHOT:
            assert service.get("restart") == "no"
            assert service["command"] == ["migrate"]
            # Not the image's check: that one asks for the API, which migrate does not run.
            assert service["healthcheck"] == {"disable": True}
            continue
        assert service.get("restart") == "unless-stopped", name
        test = service.get("healthcheck", {}).get("test") or ["NONE"]
        assert test[0] in ("CMD", "CMD-SHELL"), f"{name} has no health check"
        assert not service["healthcheck"].get("disable", False), name


def test_migrations_run_once_before_the_api_and_the_worker() -> None:
    services = _services()
    for name, service in services.items():
        for dependency in service.get("depends_on", {}):
            assert dependency in services, f"{name} depends on unknown {dependency}"
    assert services[ONE_SHOT]["depends_on"]["postgres"]["condition"] == "service_healthy"
    for name in ("api", "worker"):
        depends_on = services[name]["depends_on"]
        assert depends_on[ONE_SHOT]["condition"] == "service_completed_successfully", name
        assert depends_on["postgres"]["condition"] == "service_healthy", name


def test_postgres_keeps_its_cluster_in_a_named_volume() -> None:
    compose = _compose()
    postgres = compose["services"]["postgres"]
    major = re.fullmatch(r"postgres:(\d+)(?:[.-].*)?", postgres["image"])
    assert major, postgres["image"]
    # From 18 on, the image keeps its cluster under /var/lib/postgresql/<major>/docker and
    # refuses a volume on the old /var/lib/postgresql/data.
    target = "/var/lib/postgresql" if int(major.group(1)) >= 18 else "/var/lib/postgresql/data"
    named = {
        volume.split(":")[0]
        for volume in postgres["volumes"]
        if volume.split(":")[1] == target and not volume.startswith((".", "/", "~"))
    }
    assert named, f"no named volume on {target}"
    assert named <= set(compose.get("volumes") or {})


def _required_reference(value: str) -> bool:
    """Whether ``value`` is exactly one ``${NAME:?message}``."""
    reference = _REFERENCE.fullmatch(value)
    return reference is not None and reference.group(2) == ":?"


def test_no_secret_is_written_down() -> None:
    """Every secret-looking variable is a required reference (``${NAME:?message}``) or is
    passed on from the environment; so is the password in any URL."""
    for name, service in _services().items():
        environment = service.get("environment") or {}
        assert isinstance(environment, dict), f"{name}: environment as a mapping"
        for key, value in environment.items():
            if _SECRET_NAME.search(key) and value is not None:
                assert _required_reference(str(value)), f"{name}.{key}: {value}"
            for password in re.findall(r"://[^:/@\s]+:([^@\s]+)@", str(value)):
                assert _required_reference(password), f"{name}.{key}: {value}"
    text = COMPOSE.read_text() + DOCKERFILE.read_text()
    assert re.findall(r"sk_(?:test|live)_\w+|whsec_\w+|gAAAAA\w+", text) == []


def _container_env(service: str, monkeypatch: pytest.MonkeyPatch) -> Settings:
    """The settings ``service`` starts with: the image's ENV, then its compose
    environment, interpolated as Compose would with the required variables set."""
    for key in list(os.environ):
        if key.startswith(("PURSER_", "SEQUENCE_")) or key in ("DATABASE_URL", "REDIS_URL"):
            monkeypatch.delenv(key)
    environment = {**_image_env()}
    for key, value in (_services()[service].get("environment") or {}).items():
        if value is not None:
            environment[key] = _interpolate(str(value), REQUIRED_ENV)
    for key, value in environment.items():
        monkeypatch.setenv(key, value)
    return Settings()


def _setting_names() -> set[str]:
    """Every environment variable ``Settings`` reads: a field's aliases if it has them
    (only those are read), else ``PURSER_`` and its name."""
    names: set[str] = set()
    for field_name, field in Settings.model_fields.items():
        choices = getattr(field.validation_alias, "choices", None)
        if choices:
            names |= {str(choice) for choice in choices}
        else:
            names.add(f"PURSER_{field_name.upper()}")
    return names


def test_the_containers_environment_is_settings_purser_reads(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    known = _setting_names()
    for name in PURSER_SERVICES:
        environment = _services()[name].get("environment") or {}
        assert set(environment) - known == set(), name
    python = {"PATH", "PYTHONUNBUFFERED", "PYTHONDONTWRITEBYTECODE"}
    assert set(_image_env()) - known - python == set()
    api = _container_env("api", monkeypatch)
    published = _services()["api"]["ports"]
    assert [_interpolate(port, {}).rsplit(":", 1)[1] for port in published] == [str(api.port)]
    assert api.host == "0.0.0.0"
    assert api.secret_key == REQUIRED_ENV["PURSER_SECRET_KEY"]
    assert api.mode.value == "sandbox"
    assert api.run_webhooks is False, "webhook delivery is the worker's"
    worker = _container_env("worker", monkeypatch)
    assert worker.secret_key == api.secret_key, "the worker reads what the API encrypts"
    assert worker.database_url == api.database_url
    database = re.fullmatch(
        r"postgresql://([^:]+):([^@]+)@([^:/]+):5432/(\w+)", str(api.database_url)
    )
    assert database, api.database_url
    postgres = _services()["postgres"]["environment"]
    assert database.groups() == (
        postgres["POSTGRES_USER"],
        REQUIRED_ENV["POSTGRES_PASSWORD"],
        "postgres",
        postgres["POSTGRES_DB"],
    )


# --- The commands: those the containers run and those the documentation gives ----------


def _resolve(words: list[str]) -> tuple[Any, list[str]]:
    """The ``purser`` command (a click command, as typer builds it) that ``words`` (what
    follows ``purser``) names, and the words left for it; a word that names no subcommand
    of a group fails the test."""
    command: Any = typer.main.get_command(cli)
    rest = list(words)
    while isinstance(command, TyperGroup):
        assert rest, f"`purser {' '.join(words)}` names a group, not a command"
        sub = command.commands.get(rest[0])
        assert sub is not None, f"`purser {' '.join(words)}`: no subcommand {rest[0]!r}"
        command, rest = sub, rest[1:]
    return command, rest


def _documented_commands() -> list[list[str]]:
    """The ``purser …`` command lines the compose file's comments, the Dockerfile's and the
    Containers section of docs/operations.md give, as words after ``purser``."""
    operations = OPERATIONS.read_text()
    containers = operations[operations.index("## Containers") :]
    found: list[list[str]] = []
    for text in (COMPOSE.read_text(), DOCKERFILE.read_text(), containers):
        spans = re.findall(r"`([^`\n]+)`", text)
        # The compose header's command column: a command, then two spaces or more.
        spans += re.findall(r"^#\s+docker compose exec \w+ (purser \S.*?)(?:\s{2,}|$)", text, re.M)
        for span in spans:
            words = span.split()
            if "purser" in words and words.index("purser") < len(words) - 1:
                found.append(words[words.index("purser") + 1 :])
    return found


def test_containers_run_purser_commands() -> None:
    services = _services()
    commands = [services[name]["command"] for name in PURSER_SERVICES]
    final = _dockerfile_stages()[-1]
    commands.append(yaml.safe_load(_last(final, "CMD")))
    for words in commands:
        command, rest = _resolve(words)
        assert rest == [], f"`purser {' '.join(words)}` takes no arguments here"
        assert not isinstance(command, TyperGroup)
    assert {tuple(words) for words in commands} >= {("migrate",), ("serve",), ("worker",)}


def test_the_documented_commands_exist_with_their_options() -> None:
    documented = _documented_commands()
    assert ["keys", "create", "--owner", "OWNER"] in documented
    for words in documented:
        command, rest = _resolve(words)
        options = {opt for param in command.params for opt in (*param.opts, *param.secondary_opts)}
        unknown = [word for word in rest if word.startswith("-") and word not in options]
        assert unknown == [], f"`purser {' '.join(words)}`"


def test_health_checks_ask_for_routes_the_api_has() -> None:
    from app.main import create_app

    # Built, not started: routing needs no database.
    router = create_app(database_url="postgresql+asyncpg://unused/unused").router

    def answered(path: str) -> bool:
        scope = {"type": "http", "method": "GET", "path": path, "root_path": ""}
        return any(route.matches(scope)[0] is Match.FULL for route in router.routes)

    api_test = " ".join(_services()["api"]["healthcheck"]["test"])
    image_test = _last(_dockerfile_stages()[-1], "HEALTHCHECK")
    paths = re.findall(r"/api/v1/[\w/.-]*", api_test) + re.findall(r"/api/v1/[\w/.-]*", image_test)
    assert paths == ["/api/v1/health/ready", "/api/v1/health"]
    assert [path for path in paths if not answered(path)] == []
    assert not answered("/api/v1/health/unknown"), "the check above can fail"
    # The API's check calls the port the API listens on inside its container.
    port = re.search(r"http://127\.0\.0\.1:(\d+)/", api_test)
    assert port is not None
    assert port.group(1) == _image_env()["PURSER_PORT"]
