"""Public identifiers: a type prefix plus random hex, as the API reference shows them."""

import secrets


def new_id(prefix: str, nbytes: int = 8) -> str:
    """Return ``<prefix>_<2*nbytes hex>``; ``nbytes=8`` gives ``agent_a1b2c3d4e5f6a7b8``."""
    return f"{prefix}_{secrets.token_hex(nbytes)}"
