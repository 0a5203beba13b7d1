"""Purser: agent wallets on a PostgreSQL double-entry ledger."""
