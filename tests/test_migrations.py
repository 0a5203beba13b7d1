"""The migrations and the models describe the same schema, and downgrade cleanly."""

from alembic import command

from app.migrations import alembic_config


def test_models_match_migrations(database_url: str) -> None:
    # Raises if autogenerate would find anything to add, drop or change.
    command.check(alembic_config(database_url))


def test_downgrade_to_base_and_upgrade_again(empty_database_url: str) -> None:
    config = alembic_config(empty_database_url)
    command.downgrade(config, "base")
    command.upgrade(config, "head")
    command.check(config)
