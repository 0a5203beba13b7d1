"""How many API processes ``purser serve`` starts when ``PURSER_WORKERS`` is unset."""

import os

from app.config import Settings


def test_one_process_on_the_embedded_server() -> None:
    assert Settings(database_url=None, rate_limits="off").default_workers() == 1


def test_one_per_core_on_an_external_database_with_shared_rate_limits() -> None:
    cores = os.cpu_count() or 1
    external = "postgresql://127.0.0.1:5432/purser"
    assert Settings(database_url=external, rate_limits="off").default_workers() == cores
    redis = "redis://127.0.0.1:6379/0"
    assert Settings(database_url=external, redis_url=redis).default_workers() == cores


def test_one_process_when_each_would_count_its_own_rate_limits() -> None:
    external = "postgresql://127.0.0.1:5432/purser"
    settings = Settings(database_url=external, redis_url=None, rate_limits="on")
    assert settings.default_workers() == 1


def test_an_explicit_count_wins() -> None:
    assert Settings(workers=3).workers == 3
