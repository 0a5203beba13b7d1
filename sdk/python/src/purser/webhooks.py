"""Verify Purser's webhook deliveries (Standard Webhooks: ``webhook-id``,
``webhook-timestamp``, ``webhook-signature``), signed with the subscription's
``whsec_…`` secret."""

from __future__ import annotations

import binascii
import json
from collections.abc import Iterable, Mapping
from typing import Any

import standardwebhooks

from purser.errors import WebhookVerificationError

__all__ = ["WebhookVerificationError", "verify"]


def verify(
    payload: bytes | str,
    headers: Mapping[str, str] | Iterable[tuple[str, str]],
    secret: str,
) -> dict[str, Any]:
    """The delivery's JSON (``{id, type, data, created_at, api_version}``) if its signature
    matches ``secret`` (any of the space-separated signatures, so rotations verify) and its
    timestamp is within five minutes; ``WebhookVerificationError`` otherwise.

    Pass the raw body exactly as received, before any JSON parsing.
    """
    try:
        received = dict(headers.items()) if hasattr(headers, "items") else dict(headers)
    except (TypeError, ValueError) as error:
        raise WebhookVerificationError(
            "headers must map header names to values (the delivery's headers as received)"
        ) from error
    try:
        webhook = standardwebhooks.Webhook(secret)
        event = webhook.verify(payload, received)
    except json.JSONDecodeError as error:
        raise WebhookVerificationError(
            f"the signature matches but the payload is not JSON: {error}"
        ) from error
    except standardwebhooks.webhooks.WebhookVerificationError as error:
        raise WebhookVerificationError(str(error) or "invalid webhook signature") from error
    except (ValueError, binascii.Error, standardwebhooks.webhooks.EmptyWebhookSecretError) as error:
        raise WebhookVerificationError(f"invalid webhook signature: {error}") from error
    if not isinstance(event, dict):
        raise WebhookVerificationError("webhook payload is not a JSON object")
    return event
