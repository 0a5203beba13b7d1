"""Which addresses outbound calls may reach, and connections pinned to checked addresses.

No test needs the internet: resolvers are functions the tests control, and every
connection lands on a server on 127.0.0.1 (a fake network sends a connection meant for a
public address to loopback, recording the address it was asked for)."""

import asyncio
import datetime as dt
import ipaddress
import ssl
from collections.abc import AsyncIterator, Iterable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path

import httpcore
import httpx
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from app.kit.ssrf import (
    DestinationRefused,
    PinnedBackend,
    PinnedTransport,
    embedded_ipv4,
    refusal,
    resolve_checked,
)

REFUSED = [
    # IPv4 (IANA IPv4 Special-Purpose Address Registry, multicast, reserved)
    ("0.0.0.0", "this network"),
    ("0.1.2.3", "this network"),
    ("10.0.0.1", "private-use"),
    ("10.255.255.255", "private-use"),
    ("100.64.0.1", "shared address space"),
    ("100.127.255.254", "shared address space"),
    ("127.0.0.1", "loopback"),
    ("127.255.255.254", "loopback"),
    ("169.254.169.254", "link-local"),
    ("172.16.0.1", "private-use"),
    ("172.31.255.255", "private-use"),
    ("192.0.0.8", "IETF protocol assignments"),
    ("192.0.2.1", "documentation"),
    ("192.88.99.1", "6to4 relay anycast"),
    ("192.168.1.1", "private-use"),
    ("198.18.0.1", "benchmarking"),
    ("198.19.255.255", "benchmarking"),
    ("198.51.100.7", "documentation"),
    ("203.0.113.9", "documentation"),
    ("224.0.0.1", "multicast"),
    ("239.255.255.250", "multicast"),
    ("240.0.0.1", "reserved"),
    ("255.255.255.255", "reserved"),
    # IPv6 (IANA IPv6 Special-Purpose Address Registry, address architecture)
    ("::", "unspecified"),
    ("::1", "loopback"),
    ("fe80::1", "link-local"),
    ("fe80::1%eth0", "link-local"),
    ("fec0::1", "site-local"),
    ("fc00::1", "unique local"),
    ("fd12:3456:789a::1", "unique local"),
    ("ff02::1", "multicast"),
    ("ff0e::1", "multicast"),
    ("100::1", "discard-only"),
    ("2001:2::1", "IETF protocol assignments"),
    ("2001:10::1", "IETF protocol assignments"),
    ("2001:db8::1", "documentation"),
    ("3fff::1", "documentation"),
    ("5f00::1", "segment routing"),
    ("1::1", "outside global unicast"),
    ("4000::1", "outside global unicast"),
    ("64:ff9b:1::a9fe:a9fe", "local-use IPv4/IPv6 translation"),
    ("64:ff9b:1::808:808", "local-use IPv4/IPv6 translation"),
    # IPv4 carried in IPv6: judged by the IPv4 address
    ("::ffff:127.0.0.1", "IPv4-mapped (RFC 4291) address of 127.0.0.1, loopback"),
    ("::ffff:169.254.169.254", "IPv4-mapped (RFC 4291) address of 169.254.169.254"),
    ("::ffff:10.1.2.3", "IPv4-mapped"),
    ("::ffff:0:7f00:1", "IPv4-translated (RFC 2765) address of 127.0.0.1"),
    ("64:ff9b::a9fe:a9fe", "NAT64 (RFC 6052) address of 169.254.169.254, link-local"),
    ("64:ff9b::7f00:1", "NAT64 (RFC 6052) address of 127.0.0.1"),
    ("64:ff9b::a00:1", "NAT64 (RFC 6052) address of 10.0.0.1"),
    ("::a9fe:a9fe", "IPv4-compatible (RFC 4291) address of 169.254.169.254"),
    ("::127.0.0.1", "IPv4-compatible (RFC 4291) address of 127.0.0.1"),
    ("::0.0.0.2", "IPv4-compatible (RFC 4291) address of 0.0.0.2"),
    ("2002:a9fe:a9fe::1", "6to4 (RFC 3056) address of 169.254.169.254"),
    ("2002:7f00:1::1", "6to4 (RFC 3056) address of 127.0.0.1"),
    ("2002:c0a8:101::1", "6to4 (RFC 3056) address of 192.168.1.1"),
    # Teredo: server 8.8.8.8, client 169.254.169.254 (stored inverted)
    ("2001:0:808:808::5601:5601", "Teredo (RFC 4380) address of 169.254.169.254"),
    # Teredo: server 10.0.0.1, client 1.1.1.1
    ("2001:0:a00:1::fefe:fefe", "Teredo (RFC 4380) address of 10.0.0.1"),
]

PUBLIC = [
    "8.8.8.8",
    "1.1.1.1",
    "9.9.9.9",
    "93.184.215.14",
    "172.32.0.1",  # just past 172.16.0.0/12
    "100.128.0.1",  # just past 100.64.0.0/10
    "169.255.0.1",
    "198.20.0.1",
    "2606:4700:4700::1111",
    "2001:4860:4860::8888",
    "2a00:1450:4001:80b::200e",
    "2620:fe::fe",
    # IPv4 carried in IPv6, where the IPv4 address is public
    "::ffff:8.8.8.8",
    "64:ff9b::808:808",
    "2002:808:808::1",
    "2001:0:808:808::fefe:fefe",  # Teredo: server 8.8.8.8, client 1.1.1.1
]


@pytest.mark.parametrize(("address", "why"), REFUSED)
def test_refused_addresses(address: str, why: str) -> None:
    reason = refusal(ipaddress.ip_address(address))
    assert reason is not None, address
    assert why in reason, (address, reason)


@pytest.mark.parametrize("address", PUBLIC)
def test_public_addresses_pass(address: str) -> None:
    assert refusal(ipaddress.ip_address(address)) is None


def test_every_embedding_form_is_unwrapped() -> None:
    forms = {
        "::ffff:1.2.3.4": ("IPv4-mapped", ["1.2.3.4"]),
        "::ffff:0:1.2.3.4": ("IPv4-translated", ["1.2.3.4"]),
        "64:ff9b::1.2.3.4": ("NAT64", ["1.2.3.4"]),
        "::1.2.3.4": ("IPv4-compatible", ["1.2.3.4"]),
        "2002:102:304::5": ("6to4", ["1.2.3.4"]),
        "2001:0:102:304::fefe:fefe": ("Teredo", ["1.2.3.4", "1.1.1.1"]),
    }
    for address, (form, carried) in forms.items():
        found = embedded_ipv4(ipaddress.IPv6Address(address))
        assert found is not None, address
        assert found[0].startswith(form)
        assert [str(ipv4) for ipv4 in found[1]] == carried
    for plain in ("::", "::1", "2606:4700:4700::1111", "64:ff9b:1::102:304"):
        assert embedded_ipv4(ipaddress.IPv6Address(plain)) is None


class Resolver:
    """Answers from a script, one answer per lookup (the last repeats); counts lookups."""

    def __init__(self, *answers: list[str], delay: float = 0.0) -> None:
        self.answers = list(answers)
        self.calls: list[str] = []
        self.delay = delay

    async def __call__(self, host: str, port: int) -> list[str]:
        self.calls.append(host)
        if self.delay:
            await asyncio.sleep(self.delay)
        return self.answers.pop(0) if len(self.answers) > 1 else self.answers[0]


class LoopbackNetwork(httpcore.AsyncNetworkBackend):
    """Records the address each connection is asked for and opens it to 127.0.0.1 (the
    same port) instead; addresses in ``unreachable`` fail as a refused connection."""

    def __init__(self, unreachable: Iterable[str] = ()) -> None:
        self.asked: list[str] = []
        self.unreachable = set(unreachable)
        self._real = httpcore.AnyIOBackend()

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,  # noqa: ASYNC109 - httpcore's interface
        local_address: str | None = None,
        socket_options: Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        self.asked.append(host)
        if host in self.unreachable:
            raise httpcore.ConnectError(f"connection to {host} refused")
        return await self._real.connect_tcp("127.0.0.1", port, timeout=timeout)

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(seconds)


async def test_resolve_checked_refuses_a_host_with_any_non_public_address() -> None:
    mixed = Resolver(["93.184.215.14", "10.0.0.7"])
    with pytest.raises(DestinationRefused, match=r"resolves to 10\.0\.0\.7.*private-use"):
        await resolve_checked("hooks.example.test", 443, resolver=mixed, public_only=True)
    nat64 = Resolver(["64:ff9b::a9fe:a9fe"])
    with pytest.raises(DestinationRefused, match=r"169\.254\.169\.254"):
        await resolve_checked("hooks.example.test", 443, resolver=nat64, public_only=True)
    with pytest.raises(DestinationRefused, match="no address"):
        await resolve_checked("hooks.example.test", 443, resolver=Resolver([]), public_only=True)
    public = Resolver(["93.184.215.14", "2606:4700:4700::1111"])
    assert [
        str(a)
        for a in await resolve_checked("hooks.example.test", 443, resolver=public, public_only=True)
    ] == ["93.184.215.14", "2606:4700:4700::1111"]
    # An IP literal is its own answer: no lookup.
    literal = Resolver(["8.8.8.8"])
    with pytest.raises(DestinationRefused, match=r"127\.0\.0\.1 is a non-public address"):
        await resolve_checked("127.0.0.1", 443, resolver=literal, public_only=True)
    assert literal.calls == []
    # Without the check (the sandbox) every address is allowed, still resolved once.
    assert [
        str(a) for a in await resolve_checked("localhost", 80, resolver=mixed, public_only=False)
    ] == ["93.184.215.14", "10.0.0.7"]


async def test_a_connection_goes_to_the_checked_address_and_a_rebinding_is_refused() -> None:
    # The first lookup answers public, the next one private (DNS rebinding).
    rebinding = Resolver(["93.184.215.14"], ["127.0.0.1"])
    network = LoopbackNetwork()
    backend = PinnedBackend(public_only=True, resolver=rebinding, network=network)
    async with running_tcp_server() as port:
        stream = await backend.connect_tcp("hooks.example.test", port, timeout=5)
        await stream.aclose()
        assert network.asked == ["93.184.215.14"]  # the address checked, never the name
        assert rebinding.calls == ["hooks.example.test"]  # resolved once
        with pytest.raises(DestinationRefused, match=r"resolves to 127\.0\.0\.1.*loopback"):
            await backend.connect_tcp("hooks.example.test", port, timeout=5)
        assert network.asked == ["93.184.215.14"]  # nothing was opened to the private one


async def test_the_next_checked_address_is_tried_when_one_fails() -> None:
    network = LoopbackNetwork(unreachable=["2606:4700:4700::1111"])
    resolver = Resolver(["2606:4700:4700::1111", "93.184.215.14"])
    backend = PinnedBackend(public_only=True, resolver=resolver, network=network)
    async with running_tcp_server() as port:
        stream = await backend.connect_tcp("hooks.example.test", port, timeout=5)
        await stream.aclose()
    assert network.asked == ["2606:4700:4700::1111", "93.184.215.14"]


async def test_the_connect_timeout_covers_the_lookup() -> None:
    slow = Resolver(["93.184.215.14"], delay=30)
    backend = PinnedBackend(public_only=True, resolver=slow, network=LoopbackNetwork())
    async with asyncio.timeout(5):
        with pytest.raises(httpcore.ConnectTimeout):
            await backend.connect_tcp("hooks.example.test", 443, timeout=0.2)


async def test_https_keeps_the_host_header_sni_and_certificate_of_the_name(
    tmp_path: Path,
) -> None:
    authority = CertificateAuthority()
    network = LoopbackNetwork()
    resolver = Resolver(["93.184.215.14"])
    async with running_tls_server(authority, "hooks.example.test", tmp_path) as server:
        transport = PinnedTransport(
            public_only=True, resolver=resolver, verify=authority.client_context(), network=network
        )
        async with httpx.AsyncClient(transport=transport) as client:
            url = f"https://hooks.example.test:{server.port}/hooks?x=1"
            response = await client.post(url, content=b"{}")
        assert response.status_code == 200
        assert network.asked == ["93.184.215.14"]
        assert server.seen == [
            Seen(
                sni="hooks.example.test",
                host=f"hooks.example.test:{server.port}",
                path="/hooks?x=1",
            )
        ]


async def test_a_certificate_for_another_name_is_refused(tmp_path: Path) -> None:
    authority = CertificateAuthority()
    async with running_tls_server(authority, "other.example.test", tmp_path) as server:
        transport = PinnedTransport(
            public_only=True,
            resolver=Resolver(["93.184.215.14"]),
            verify=authority.client_context(),
            network=LoopbackNetwork(),
        )
        async with httpx.AsyncClient(transport=transport) as client:
            with pytest.raises(httpx.ConnectError, match="CERTIFICATE_VERIFY_FAILED"):
                await client.post(f"https://hooks.example.test:{server.port}/", content=b"{}")
        assert [seen.host for seen in server.seen] == []


async def test_the_transport_refuses_private_answers_before_connecting(tmp_path: Path) -> None:
    authority = CertificateAuthority()
    network = LoopbackNetwork()
    async with running_tls_server(authority, "hooks.example.test", tmp_path) as server:
        transport = PinnedTransport(
            public_only=True,
            resolver=Resolver(["169.254.169.254"]),
            verify=authority.client_context(),
            network=network,
        )
        async with httpx.AsyncClient(transport=transport) as client:
            with pytest.raises(DestinationRefused, match="link-local"):
                await client.post(f"https://hooks.example.test:{server.port}/", content=b"{}")
    assert network.asked == []
    assert server.seen == []


# --- local servers -------------------------------------------------------------------


@asynccontextmanager
async def running_tcp_server() -> AsyncIterator[int]:
    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    try:
        yield server.sockets[0].getsockname()[1]
    finally:
        server.close()
        await server.wait_closed()


class CertificateAuthority:
    """A throwaway CA issuing server certificates for names under test."""

    def __init__(self) -> None:
        self.key = ec.generate_private_key(ec.SECP256R1())
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Purser test CA")])
        now = dt.datetime.now(dt.UTC)
        self.name = name
        self.cert = (
            x509.CertificateBuilder()
            .subject_name(name)
            .issuer_name(name)
            .public_key(self.key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(minutes=5))
            .not_valid_after(now + dt.timedelta(hours=1))
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .add_extension(
                x509.KeyUsage(
                    digital_signature=True,
                    content_commitment=False,
                    key_encipherment=False,
                    data_encipherment=False,
                    key_agreement=False,
                    key_cert_sign=True,
                    crl_sign=True,
                    encipher_only=False,
                    decipher_only=False,
                ),
                critical=True,
            )
            .add_extension(
                x509.SubjectKeyIdentifier.from_public_key(self.key.public_key()), critical=False
            )
            .sign(self.key, hashes.SHA256())
        )

    def client_context(self) -> ssl.SSLContext:
        pem = self.cert.public_bytes(serialization.Encoding.PEM).decode()
        return ssl.create_default_context(cadata=pem)

    def server_context(self, hostname: str, directory: Path) -> ssl.SSLContext:
        key = ec.generate_private_key(ec.SECP256R1())
        now = dt.datetime.now(dt.UTC)
        cert = (
            x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, hostname)]))
            .issuer_name(self.name)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(minutes=5))
            .not_valid_after(now + dt.timedelta(hours=1))
            .add_extension(x509.SubjectAlternativeName([x509.DNSName(hostname)]), critical=False)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_public_key(self.key.public_key()),
                critical=False,
            )
            .add_extension(
                x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.SERVER_AUTH]), critical=False
            )
            .sign(self.key, hashes.SHA256())
        )
        cert_file, key_file = directory / f"{hostname}.pem", directory / f"{hostname}.key"
        cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        key_file.write_bytes(
            key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            )
        )
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(cert_file, key_file)
        return context


@dataclass(frozen=True)
class Seen:
    sni: str | None
    host: str
    path: str


@dataclass
class TlsServer:
    port: int
    seen: list[Seen] = field(default_factory=list)


@asynccontextmanager
async def running_tls_server(
    authority: CertificateAuthority, hostname: str, directory: Path
) -> AsyncIterator[TlsServer]:
    """An HTTPS server on 127.0.0.1 with a certificate for ``hostname``; records the SNI
    name, ``Host`` header and target of each request, and answers 200."""
    context = authority.server_context(hostname, directory)
    names: dict[int, str | None] = {}

    def remember_sni(sock: ssl.SSLObject, name: str | None, _: ssl.SSLContext) -> None:
        names[id(sock)] = name

    context.sni_callback = remember_sni
    state = TlsServer(port=0)

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            head = await reader.readuntil(b"\r\n\r\n")
        except (asyncio.IncompleteReadError, ConnectionError, ssl.SSLError):
            writer.close()
            return
        lines = head.decode().split("\r\n")
        headers = dict(line.split(": ", 1) for line in lines[1:] if ": " in line)
        length = int(headers.get("content-length", headers.get("Content-Length", "0")))
        await reader.readexactly(length)
        sni = names.get(id(writer.get_extra_info("ssl_object")))
        host = headers.get("host", headers.get("Host", ""))
        state.seen.append(Seen(sni=sni, host=host, path=lines[0].split(" ")[1]))
        writer.write(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\nconnection: close\r\n\r\nok")
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0, ssl=context)
    state.port = server.sockets[0].getsockname()[1]
    try:
        yield state
    finally:
        server.close()
        await server.wait_closed()
