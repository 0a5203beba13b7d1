"""Where webhooks may be sent: in live mode only https to public addresses (checked when
the endpoint is saved and again before every attempt, against DNS rebinding); the sandbox
also allows http and private or loopback addresses, so local receivers work."""

import asyncio
import ipaddress
import socket
from urllib.parse import urlsplit

from app.domain.webhook.errors import InvalidWebhookUrl


def check_syntax(url: str, *, sandbox: bool) -> str:
    parts = urlsplit(url)
    allowed = ("https", "http") if sandbox else ("https",)
    if parts.scheme not in allowed or not parts.hostname:
        need = "http(s)" if sandbox else "https"
        raise InvalidWebhookUrl(f"url must be an absolute {need} URL", param="url")
    if parts.username or parts.password:
        raise InvalidWebhookUrl("url must not carry credentials", param="url")
    return parts.hostname


async def check_destination(url: str, *, sandbox: bool) -> None:
    """Raise ``InvalidWebhookUrl`` unless ``url`` may receive deliveries now."""
    host = check_syntax(url, sandbox=sandbox)
    if sandbox:
        return
    try:
        infos = await asyncio.get_running_loop().getaddrinfo(host, None, type=socket.SOCK_STREAM)
    except OSError:
        raise InvalidWebhookUrl(f"url host {host} does not resolve", param="url") from None
    for info in infos:
        address = ipaddress.ip_address(info[4][0])
        if not address.is_global:
            raise InvalidWebhookUrl(
                f"url host {host} resolves to a non-public address", param="url"
            )
