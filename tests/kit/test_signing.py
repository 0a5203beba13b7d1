"""Deliveries verify with the real ``standardwebhooks`` package and with the API
reference's own snippet."""

import hashlib
import hmac
import json
from datetime import UTC, datetime

import pytest
from standardwebhooks import Webhook
from standardwebhooks.webhooks import WebhookVerificationError

from app.kit.signing import new_secret, signature_headers


def verify_webhook(payload: str, signature: str, secret: str) -> bool:
    # The API reference's snippet, verbatim.
    expected = "sha256=" + hmac.new(secret.encode(), payload.encode(), hashlib.sha256).hexdigest()
    return hmac.compare_digest(expected, signature)


def test_both_schemes_verify() -> None:
    secret = new_secret()
    body = json.dumps({"id": "evt_1", "type": "payment.completed", "data": {}}).encode()
    headers = signature_headers([secret], "evt_1", datetime.now(UTC), body)
    assert Webhook(secret).verify(body, headers) == json.loads(body)
    assert verify_webhook(body.decode(), headers["X-Sardis-Signature"], secret)
    assert not verify_webhook(body.decode() + " ", headers["X-Sardis-Signature"], secret)


def test_tampered_or_stale_or_foreign_is_refused() -> None:
    secret = new_secret()
    body = b'{"id":"evt_2"}'
    headers = signature_headers([secret], "evt_2", datetime.now(UTC), body)
    with pytest.raises(WebhookVerificationError):
        Webhook(secret).verify(b'{"id":"evt_3"}', headers)
    with pytest.raises(WebhookVerificationError):
        Webhook(new_secret()).verify(body, headers)
    old = signature_headers([secret], "evt_2", datetime(2020, 1, 1, tzinfo=UTC), body)
    with pytest.raises(WebhookVerificationError):
        Webhook(secret).verify(body, old)  # the timestamp is signed: no replay


def test_rotation_signs_with_old_and_new() -> None:
    old, new = new_secret(), new_secret()
    body = b'{"id":"evt_4"}'
    headers = signature_headers([new, old], "evt_4", datetime.now(UTC), body)
    assert Webhook(new).verify(body, headers)
    assert Webhook(old).verify(body, headers)
