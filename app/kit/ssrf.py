"""Outbound HTTP to URLs a customer chose, without server-side request forgery.

Two parts:

- ``refusal(address)`` says whether an IP address may be reached: it must be globally
  reachable. IPv6 forms that carry an IPv4 address (IPv4-mapped, IPv4-translated,
  IPv4-compatible, NAT64 ``64:ff9b::/96``, 6to4, Teredo) are judged by the IPv4 address
  they carry, since that is the host the packets end up at; ``[64:ff9b::a9fe:a9fe]`` is
  ``169.254.169.254``, the cloud metadata service. The tables follow the IANA IPv4 and
  IPv6 Special-Purpose Address Registries (every entry not "globally reachable"), plus
  multicast and, for IPv6, everything outside global unicast ``2000::/3``. The standard
  library's ``is_global`` is consulted as well, so the rule is never looser than it.
- ``PinnedTransport``, an httpx transport whose connections resolve the host once, check
  every address it resolves to, and connect to a checked address, never to the name: no
  second lookup can answer differently (DNS rebinding). The request keeps its URL, so the
  ``Host`` header, TLS SNI and certificate verification are those of the original host.
"""

import asyncio
import ipaddress
import socket
import ssl
import time
from collections.abc import AsyncIterable, AsyncIterator, Awaitable, Callable, Iterable, Iterator
from contextlib import contextmanager
from typing import Final

import httpcore
import httpx

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
#: ``(host, port) -> addresses as text``, in the order to try them.
Resolver = Callable[[str, int], Awaitable[list[str]]]


IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network


def _networks(entries: Iterable[tuple[str, str]]) -> tuple[tuple[IPNetwork, str], ...]:
    return tuple((ipaddress.ip_network(network), why) for network, why in entries)


#: IANA IPv4 Special-Purpose Address Registry entries that are not globally reachable,
#: plus multicast. 255.255.255.255 (limited broadcast, RFC 919) lies in 240.0.0.0/4.
_IPV4_REFUSED: Final = _networks(
    [
        ("0.0.0.0/8", '"this network" (RFC 791)'),
        ("10.0.0.0/8", "private-use (RFC 1918)"),
        ("100.64.0.0/10", "shared address space (RFC 6598)"),
        ("127.0.0.0/8", "loopback (RFC 1122)"),
        ("169.254.0.0/16", "link-local (RFC 3927)"),
        ("172.16.0.0/12", "private-use (RFC 1918)"),
        ("192.0.0.0/24", "IETF protocol assignments (RFC 6890)"),
        ("192.0.2.0/24", "documentation, TEST-NET-1 (RFC 5737)"),
        ("192.88.99.0/24", "deprecated 6to4 relay anycast (RFC 7526)"),
        ("192.168.0.0/16", "private-use (RFC 1918)"),
        ("198.18.0.0/15", "benchmarking (RFC 2544)"),
        ("198.51.100.0/24", "documentation, TEST-NET-2 (RFC 5737)"),
        ("203.0.113.0/24", "documentation, TEST-NET-3 (RFC 5737)"),
        ("224.0.0.0/4", "multicast (RFC 5771)"),
        ("240.0.0.0/4", "reserved (RFC 1112)"),
    ]
)

#: IANA IPv6 Special-Purpose Address Registry entries that are not globally reachable,
#: plus deprecated site-local and multicast. The IPv4-embedding prefixes are handled
#: before this table (``embedded_ipv4``).
_IPV6_REFUSED: Final = _networks(
    [
        ("::/128", "unspecified (RFC 4291)"),
        ("::1/128", "loopback (RFC 4291)"),
        ("64:ff9b:1::/48", "local-use IPv4/IPv6 translation (RFC 8215)"),
        ("100::/64", "discard-only (RFC 6666)"),
        ("100:0:0:1::/64", "dummy prefix (RFC 9780)"),
        ("2001::/23", "IETF protocol assignments (RFC 2928)"),
        ("2001:db8::/32", "documentation (RFC 3849)"),
        ("3fff::/20", "documentation (RFC 9637)"),
        ("5f00::/16", "segment routing SIDs (RFC 9602)"),
        ("fc00::/7", "unique local (RFC 4193)"),
        ("fe80::/10", "link-local (RFC 4291)"),
        ("fec0::/10", "deprecated site-local (RFC 3879)"),
        ("ff00::/8", "multicast (RFC 4291)"),
    ]
)
_GLOBAL_UNICAST: Final = ipaddress.IPv6Network("2000::/3")
_MAPPED: Final = ipaddress.IPv6Network("::ffff:0:0/96")
_TRANSLATED: Final = ipaddress.IPv6Network("::ffff:0:0:0/96")
_COMPATIBLE: Final = ipaddress.IPv6Network("::/96")
_NAT64: Final = ipaddress.IPv6Network("64:ff9b::/96")


def embedded_ipv4(
    address: ipaddress.IPv6Address,
) -> tuple[str, tuple[ipaddress.IPv4Address, ...]] | None:
    """The IPv4 addresses an IPv6 address carries, with the name of its form, or None.

    - IPv4-mapped ``::ffff:a.b.c.d`` (RFC 4291 §2.5.5.2), IPv4-translated
      ``::ffff:0:a.b.c.d`` (RFC 2765 §2.1), NAT64 well-known prefix ``64:ff9b::a.b.c.d``
      (RFC 6052 §2.1) and IPv4-compatible ``::a.b.c.d`` (RFC 4291 §2.5.5.1; ``::`` and
      ``::1`` excepted): the low 32 bits;
    - 6to4 ``2002:AABB:CCDD::/48`` (RFC 3056 §2): bits 16 to 47;
    - Teredo ``2001::/32`` (RFC 4380 §4): the server (bits 32 to 63) and the client (the
      low 32 bits, inverted), both.

    The local-use NAT64 prefix ``64:ff9b:1::/48`` (RFC 8215) is not unwrapped: where the
    IPv4 address sits depends on the prefix length its operator chose; it is refused.
    """
    value = int(address)
    low = ipaddress.IPv4Address(value & 0xFFFFFFFF)
    if address in _MAPPED:
        return "IPv4-mapped (RFC 4291)", (low,)
    if address in _TRANSLATED:
        return "IPv4-translated (RFC 2765)", (low,)
    if address in _NAT64:
        return "NAT64 (RFC 6052)", (low,)
    if address in _COMPATIBLE and value > 1:
        return "IPv4-compatible (RFC 4291)", (low,)
    if address.sixtofour is not None:
        return "6to4 (RFC 3056)", (address.sixtofour,)
    if address.teredo is not None:
        return "Teredo (RFC 4380)", address.teredo
    return None


def _ipv4_refusal(address: ipaddress.IPv4Address) -> str | None:
    for network, why in _IPV4_REFUSED:
        if address in network:
            return why
    if not address.is_global:
        return "not globally reachable"
    return None


def refusal(address: IPAddress) -> str | None:
    """None when ``address`` may be reached from a live server; otherwise why not, e.g.
    ``"link-local (RFC 3927)"`` or ``"NAT64 (RFC 6052) address of 169.254.169.254,
    link-local (RFC 3927)"``. Scope ids (``fe80::1%eth0``) are ignored."""
    if isinstance(address, ipaddress.IPv4Address):
        return _ipv4_refusal(address)
    if address.scope_id is not None:
        address = ipaddress.IPv6Address(int(address))
    embedded = embedded_ipv4(address)
    if embedded is not None:
        form, carried = embedded
        for ipv4 in carried:
            why = _ipv4_refusal(ipv4)
            if why is not None:
                return f"{form} address of {ipv4}, {why}"
        return None
    for network, why in _IPV6_REFUSED:
        if address in network:
            return why
    if address not in _GLOBAL_UNICAST:
        return "outside global unicast 2000::/3 (RFC 4291)"
    if not address.is_global:
        return "not globally reachable"
    return None


def is_public(address: IPAddress) -> bool:
    return refusal(address) is None


class DestinationRefused(httpx.ConnectError):
    """A host that resolves to an address ``refusal`` refuses, or to no address at all.
    Raised before any connection is opened."""


async def system_resolver(host: str, port: int) -> list[str]:
    """The operating system's answer (``getaddrinfo``), duplicates removed, in its order
    (RFC 6724 destination address selection). Raises ``OSError`` (``socket.gaierror``)."""
    infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return list(dict.fromkeys(str(info[4][0]) for info in infos))


async def resolve_checked(
    host: str, port: int, *, resolver: Resolver, public_only: bool
) -> list[IPAddress]:
    """Resolve ``host`` once (an IP literal is its own answer) and, with ``public_only``,
    check every address: one refused address refuses the host, so a name answering with
    a public and a private address never reaches the private one.

    Raises ``DestinationRefused`` and whatever ``resolver`` raises (``OSError``)."""
    try:
        answers = [ipaddress.ip_address(host)]
    except ValueError:
        answers = [ipaddress.ip_address(text) for text in await resolver(host, port)]
    if not answers:
        raise DestinationRefused(f"{host} resolves to no address")
    if public_only:
        for address in answers:
            why = refusal(address)
            if why is not None:
                where = "is" if host == str(address) else f"resolves to {address},"
                raise DestinationRefused(f"{host} {where} a non-public address ({why})")
    return answers


class PinnedBackend(httpcore.AsyncNetworkBackend):
    """An httpcore network backend that connects only to addresses ``resolve_checked``
    approved, resolving once per connection. The connect timeout covers the lookup and
    every address tried (in the resolver's order, the next one when one fails)."""

    def __init__(
        self,
        *,
        public_only: bool,
        resolver: Resolver = system_resolver,
        network: httpcore.AsyncNetworkBackend | None = None,
    ) -> None:
        self._public_only = public_only
        self._resolver = resolver
        self._network = network or httpcore.AnyIOBackend()

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,  # noqa: ASYNC109 - httpcore's interface
        local_address: str | None = None,
        socket_options: Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        deadline = None if timeout is None else time.monotonic() + timeout
        try:
            async with asyncio.timeout(timeout):
                addresses = await resolve_checked(
                    host, port, resolver=self._resolver, public_only=self._public_only
                )
        except TimeoutError:
            raise httpcore.ConnectTimeout(f"resolving {host} took over {timeout} s") from None
        except OSError as error:
            raise httpcore.ConnectError(f"{host} does not resolve: {error}") from None
        failure: Exception | None = None
        for address in addresses:
            remaining = None if deadline is None else deadline - time.monotonic()
            if remaining is not None and remaining <= 0:
                raise httpcore.ConnectTimeout(f"connecting to {host} took over {timeout} s")
            try:
                return await self._network.connect_tcp(
                    str(address),
                    port,
                    timeout=remaining,
                    local_address=local_address,
                    socket_options=socket_options,
                )
            except (httpcore.ConnectError, httpcore.ConnectTimeout) as error:
                failure = error
        assert failure is not None
        raise failure

    async def connect_unix_socket(
        self,
        path: str,
        timeout: float | None = None,  # noqa: ASYNC109 - httpcore's interface
        socket_options: Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        raise DestinationRefused("unix sockets are not a destination")

    async def sleep(self, seconds: float) -> None:
        await self._network.sleep(seconds)


#: httpcore's exceptions as httpx's, most specific first (as httpx's own transport maps
#: them), so callers see the usual ``httpx.HTTPError`` family.
_ERRORS: Final[tuple[tuple[type[Exception], type[httpx.TransportError]], ...]] = (
    (httpcore.ConnectTimeout, httpx.ConnectTimeout),
    (httpcore.ReadTimeout, httpx.ReadTimeout),
    (httpcore.WriteTimeout, httpx.WriteTimeout),
    (httpcore.PoolTimeout, httpx.PoolTimeout),
    (httpcore.TimeoutException, httpx.TimeoutException),
    (httpcore.ConnectError, httpx.ConnectError),
    (httpcore.ReadError, httpx.ReadError),
    (httpcore.WriteError, httpx.WriteError),
    (httpcore.NetworkError, httpx.NetworkError),
    (httpcore.RemoteProtocolError, httpx.RemoteProtocolError),
    (httpcore.LocalProtocolError, httpx.LocalProtocolError),
    (httpcore.ProtocolError, httpx.ProtocolError),
    (httpcore.UnsupportedProtocol, httpx.UnsupportedProtocol),
)


@contextmanager
def _httpx_errors() -> Iterator[None]:
    try:
        yield
    except Exception as error:
        for raised, mapped in _ERRORS:
            if isinstance(error, raised):
                raise mapped(str(error)) from error
        raise


class _ResponseStream(httpx.AsyncByteStream):
    def __init__(self, stream: AsyncIterable[bytes]) -> None:
        self._stream = stream

    async def __aiter__(self) -> AsyncIterator[bytes]:
        with _httpx_errors():
            async for part in self._stream:
                yield part

    async def aclose(self) -> None:
        close = getattr(self._stream, "aclose", None)
        if close is not None:
            await close()


class PinnedTransport(httpx.AsyncBaseTransport):
    """HTTP/1.1 over an httpcore connection pool whose connections ``PinnedBackend``
    opens. Proxies from the environment are not used (a proxy would make the check
    apply to the proxy's address). Connections are pooled per scheme, host and port,
    each to the address checked when it was opened.

    ``verify`` is the TLS context (default: httpx's, with certifi's roots)."""

    def __init__(
        self,
        *,
        public_only: bool,
        resolver: Resolver = system_resolver,
        verify: ssl.SSLContext | None = None,
        max_connections: int = 100,
        keepalive_expiry: float = 5.0,
        network: httpcore.AsyncNetworkBackend | None = None,
    ) -> None:
        self._pool = httpcore.AsyncConnectionPool(
            ssl_context=verify or httpx.create_ssl_context(),
            max_connections=max_connections,
            max_keepalive_connections=max_connections,
            keepalive_expiry=keepalive_expiry,
            network_backend=PinnedBackend(
                public_only=public_only, resolver=resolver, network=network
            ),
        )

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        assert isinstance(request.stream, httpx.AsyncByteStream)
        # The server name TLS presents and verifies is always the URL's host.
        extensions = {k: v for k, v in request.extensions.items() if k != "sni_hostname"}
        core_request = httpcore.Request(
            method=request.method,
            url=httpcore.URL(
                scheme=request.url.raw_scheme,
                host=request.url.raw_host,
                port=request.url.port,
                target=request.url.raw_path,
            ),
            headers=request.headers.raw,
            content=request.stream,
            extensions=extensions,
        )
        with _httpx_errors():
            response = await self._pool.handle_async_request(core_request)
        assert isinstance(response.stream, AsyncIterable)
        return httpx.Response(
            status_code=response.status,
            headers=response.headers,
            stream=_ResponseStream(response.stream),
            extensions=response.extensions,
        )

    async def aclose(self) -> None:
        await self._pool.aclose()
