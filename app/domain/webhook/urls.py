"""Where webhooks may be sent.

Every URL is checked completely when an endpoint is saved (``check_destination``) and
parsed again by every delivery attempt (``parse``), so a stored URL that no longer passes
fails that attempt, never the worker. In live mode only https to public addresses: the
host's addresses are checked on save and again when each connection is opened, against
the address actually connected to (``app.kit.ssrf``). The sandbox also allows http and
private or loopback addresses, so local receivers work.
"""

import asyncio
import ipaddress
import re
from dataclasses import dataclass
from typing import Final
from urllib.parse import urlsplit

import httpx

from app.domain.webhook.errors import InvalidWebhookUrl
from app.kit.ssrf import DestinationRefused, Resolver, resolve_checked, system_resolver

#: RFC 3986 §2: unreserved and reserved characters and percent-encodings; nothing else
#: appears in a URI (an IRI's other characters are percent-encoded, its host in xn-- form).
_URI_CHARACTER: Final = re.compile(r"[A-Za-z0-9\-._~:/?#\[\]@!$&'()*+,;=%]")
_BAD_PERCENT: Final = re.compile(r"%(?![0-9A-Fa-f]{2})")
#: A DNS label (RFC 1123 §2.1; ``_`` too, as names in use carry it), at most 63 octets.
_LABEL: Final = re.compile(r"[A-Za-z0-9_](?:[A-Za-z0-9_-]{0,61}[A-Za-z0-9_])?")
#: A last label that ``inet_aton`` would read as a number (``127.1``, ``0x7f.1``,
#: ``2130706433``): no top-level domain is numeric (RFC 3696 §2), so only a dotted quad may
#: end in one.
_NUMERIC_LABEL: Final = re.compile(r"[0-9]+|0x[0-9a-f]*", re.IGNORECASE)
_DEFAULT_PORTS: Final = {"http": 80, "https": 443}
#: How long saving an endpoint waits for its host to resolve.
RESOLVE_TIMEOUT_SECONDS: Final = 5.0


@dataclass(frozen=True, slots=True)
class Destination:
    """A URL that passed ``parse``: ``url`` as httpx sends it; ``host`` in ASCII (an IPv6
    address without brackets); ``port`` explicit or the scheme's default."""

    url: httpx.URL
    host: str
    port: int


def _refuse(why: str) -> InvalidWebhookUrl:
    return InvalidWebhookUrl(f"url {why}", param="url")


def _check_host(host: str, bracketed: bool) -> None:
    if bracketed:
        try:
            if "%" in host:  # a zone (RFC 6874) names an interface of this machine
                raise ValueError(host)
            ipaddress.IPv6Address(host)
        except ValueError:
            raise _refuse("host in brackets must be an IPv6 address, without a zone") from None
        return
    labels = host.removesuffix(".").split(".")
    if len(host) > 253 or not all(_LABEL.fullmatch(label) for label in labels):
        raise _refuse(
            "host must be a DNS name (labels of letters, digits and hyphens, at most 63 "
            "characters each), a dotted-quad IPv4 address or an IPv6 address in brackets"
        )
    if _NUMERIC_LABEL.fullmatch(labels[-1]):
        try:
            ipaddress.IPv4Address(host)
        except ValueError:
            raise _refuse(
                "host that ends in a number must be a dotted-quad IPv4 address "
                "(four decimal parts, 0 to 255, no leading zeros)"
            ) from None


def _same_host(one: str, other: str) -> bool:
    try:
        return ipaddress.ip_address(one) == ipaddress.ip_address(other)
    except ValueError:
        return one.lower() == other.lower()


def parse(url: str, *, sandbox: bool) -> Destination:
    """Check ``url`` without any network access.

    Rules: an RFC 3986 URI (printable ASCII: percent-encode anything else, write an
    international host name in its ``xn--`` form) with well-formed percent-encodings;
    scheme https, or http too in the sandbox; no user information; a host that is a DNS
    name, a dotted-quad IPv4 address or a bracketed IPv6 address without zone; a port, if
    given, from 1 to 65535 (0 is reserved, RFC 6335 §6). Python's ``urllib.parse`` and
    httpx (the client that sends) must both accept the URL and agree on its host and port.

    Raises ``InvalidWebhookUrl`` (422, ``param: url``) naming the first rule broken.
    """
    for position, character in enumerate(url):
        if not _URI_CHARACTER.fullmatch(character):
            raise _refuse(
                f"must be an RFC 3986 URI: character U+{ord(character):04X} at position "
                f"{position} is not allowed (percent-encode it; write an international host "
                "name in its xn-- form)"
            )
    if _BAD_PERCENT.search(url):
        raise _refuse("has a % that does not start a percent-encoding (%XX, RFC 3986 §2.1)")
    try:
        parts = urlsplit(url)
    except ValueError as error:
        raise _refuse(f"is not a valid URL: {error}") from None
    try:
        port = parts.port
    except ValueError:
        raise _refuse("port must be a number from 1 to 65535") from None
    try:
        sent = httpx.URL(url)
    except httpx.InvalidURL as error:
        raise _refuse(f"is not a valid URL: {error}") from None
    allowed = ("https", "http") if sandbox else ("https",)
    if parts.scheme not in allowed or not parts.netloc:
        need = "http(s)" if sandbox else "https"
        raise _refuse(f"must be an absolute {need} URL")
    if "@" in parts.netloc:
        raise _refuse("must not carry credentials")
    host = parts.hostname
    if not host:
        raise _refuse("has no host")
    _check_host(host, bracketed=parts.netloc.startswith("["))
    if port == 0:
        raise _refuse("port must be from 1 to 65535 (port 0 is reserved, RFC 6335 §6)")
    try:
        _ = sent.host  # decodes xn-- labels (IDNA 2008, RFC 5891)
    except ValueError:
        raise _refuse("host is not a valid internationalized domain name (RFC 5891)") from None
    default = _DEFAULT_PORTS[parts.scheme]
    sent_host = sent.raw_host.decode("ascii")
    if not _same_host(sent_host, host) or (sent.port or default) != (port or default):
        raise _refuse("is read differently by different URL parsers")
    return Destination(url=sent, host=host, port=port or default)


async def check_destination(
    url: str, *, sandbox: bool, resolver: Resolver = system_resolver
) -> Destination:
    """``parse`` ``url``, then in live mode resolve its host and refuse it unless every
    address it resolves to is public (``app.kit.ssrf.refusal``).

    Raises ``InvalidWebhookUrl`` (422): a broken rule, a non-public address, or a host
    that does not resolve within ``RESOLVE_TIMEOUT_SECONDS``."""
    destination = parse(url, sandbox=sandbox)
    if sandbox:
        return destination
    try:
        async with asyncio.timeout(RESOLVE_TIMEOUT_SECONDS):
            await resolve_checked(
                destination.host, destination.port, resolver=resolver, public_only=True
            )
    except DestinationRefused as error:
        raise _refuse(f"host {error}") from None
    except (OSError, TimeoutError):
        raise _refuse(f"host {destination.host} does not resolve") from None
    return destination
