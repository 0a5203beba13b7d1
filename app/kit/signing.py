"""Webhook signatures.

Two schemes on every delivery:
- Standard Webhooks (``webhook-id``, ``webhook-timestamp``, ``webhook-signature:
  v1,<base64 HMAC-SHA256 of "id.timestamp.body">``), computed by the ``standardwebhooks``
  package itself, so its ``Webhook.verify`` accepts them; during a secret rotation the
  header carries one signature per live secret, space-separated, as the spec allows;
- the API reference's ``X-Sardis-Signature: sha256=<hex HMAC-SHA256 of the raw body>``,
  keyed with the bytes of the whole secret string, exactly as its verification snippet does.
"""

import base64
import hashlib
import hmac
import secrets
from collections.abc import Sequence
from datetime import UTC, datetime

from standardwebhooks import Webhook

SECRET_PREFIX = "whsec_"  # noqa: S105 - a prefix, not a secret


def new_secret() -> str:
    """A ``whsec_`` secret: 32 random bytes, base64."""
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(32)).decode()


def seed_signature(secret: str, body: bytes) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def signature_headers(
    live_secrets: Sequence[str], message_id: str, sent_at: datetime, body: bytes
) -> dict[str, str]:
    """Headers for one delivery attempt, signed with every live secret (newest first)."""
    if not live_secrets:
        raise ValueError("a delivery needs at least one secret")
    sent_at = sent_at.astimezone(UTC)
    text = body.decode()
    standard = " ".join(Webhook(secret).sign(message_id, sent_at, text) for secret in live_secrets)
    return {
        "webhook-id": message_id,
        "webhook-timestamp": str(int(sent_at.timestamp())),
        "webhook-signature": standard,
        "X-Sardis-Signature": seed_signature(live_secrets[0], body),
    }
