"""Delivering webhooks: lease due deliveries, send them signed, record every attempt,
retry with backoff and jitter, dead-letter after the last attempt, disable endpoints that
fail for days. At least once: a delivery is leased, not deleted, until an attempt lands.
A worker leases only deliveries to endpoints of its connection's mode: a live worker never
sends a sandbox event, nor a sandbox worker a live one.

Isolation: attempts run concurrently, at most ``DeliveryLimits.in_flight`` at once per
worker and ``per_endpoint`` of them to one endpoint, each bounded by a connect and a
total timeout; a lease takes at most ``per_endpoint`` deliveries of an endpoint (its
oldest), so an endpoint with a backlog cannot crowd others out of a batch. Whatever goes
wrong in one attempt (a URL that no longer parses, a refused address, a timeout, an
unexpected exception) is recorded as that attempt's failure and scheduled like any other.
"""

import asyncio
import functools
import logging
import random
import ssl
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from types import TracebackType
from typing import Any, Final, Self

import httpcore
import httpx
from sqlalchemy import Row
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.db import run_in_transaction
from app.domain.webhook import repository, urls
from app.domain.webhook.errors import InvalidWebhookUrl
from app.kit.encryption import SecretBox
from app.kit.signing import signature_headers
from app.kit.ssrf import PinnedTransport, Resolver, system_resolver
from app.kit.time import utc_now

logger = logging.getLogger("purser.webhooks")

#: Delay before each retry; after the last one the delivery is dead-lettered.
RETRY_SCHEDULE: Final = (
    timedelta(seconds=5),
    timedelta(minutes=5),
    timedelta(minutes=30),
    timedelta(hours=2),
    timedelta(hours=5),
    timedelta(hours=10),
    timedelta(hours=10),
)
#: How long a claimed delivery stays with its worker; far longer than an attempt can take
#: (``DeliveryLimits.total_timeout`` plus recording), so no other worker sends it twice.
LEASE: Final = timedelta(seconds=60)
DISABLE_AFTER: Final = timedelta(days=5)
#: Bytes of a response body read (and thrown away) before the connection is dropped.
MAX_RESPONSE_BYTES: Final = 64 * 1024
#: Longest error text kept per attempt.
MAX_ERROR_LENGTH: Final = 500


@dataclass(frozen=True, slots=True)
class DeliveryLimits:
    """Bounds of one worker (a ``purser serve`` or ``purser worker`` process).

    ``in_flight`` attempts at once, ``per_endpoint`` of them to one endpoint;
    ``connect_timeout`` seconds for the lookup, TCP and TLS of a connection;
    ``total_timeout`` seconds for a whole attempt, first byte to last.
    """

    in_flight: int = 64
    per_endpoint: int = 4
    connect_timeout: float = 5.0
    total_timeout: float = 10.0


@dataclass(frozen=True, slots=True)
class AttemptResult:
    """One attempt: the status code if an answer came, latency in ms, and the failure
    (``None`` for a 2xx)."""

    status_code: int | None
    latency_ms: int
    error: str | None


def _describe(error: BaseException) -> str:
    text = str(error)
    return (f"{type(error).__name__}: {text}" if text else type(error).__name__)[:MAX_ERROR_LENGTH]


class Sender:
    """The HTTP side of deliveries: one pooled client whose connections go only to
    checked addresses (``app.kit.ssrf.PinnedTransport``; in live mode public ones only),
    no redirects followed, no proxies from the environment. Use as an async context
    manager. ``resolver``, ``verify`` and ``network`` are for tests."""

    def __init__(
        self,
        *,
        sandbox: bool,
        limits: DeliveryLimits | None = None,
        resolver: Resolver = system_resolver,
        verify: ssl.SSLContext | None = None,
        network: httpcore.AsyncNetworkBackend | None = None,
    ) -> None:
        self.sandbox = sandbox
        self.limits = limits or DeliveryLimits()
        transport = PinnedTransport(
            public_only=not sandbox,
            resolver=resolver,
            verify=verify,
            max_connections=self.limits.in_flight,
            network=network,
        )
        self._http = httpx.AsyncClient(
            transport=transport,
            timeout=httpx.Timeout(self.limits.total_timeout, connect=self.limits.connect_timeout),
            follow_redirects=False,
            trust_env=False,
        )

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self._http.aclose()

    async def post(self, url: str, body: bytes, headers: Mapping[str, str]) -> AttemptResult:
        """POST ``body`` to ``url`` once; never raises (but for cancellation): every
        failure, a URL ``urls.parse`` refuses included, is the result's ``error``."""
        started = time.perf_counter()

        def elapsed() -> int:
            return int((time.perf_counter() - started) * 1000)

        try:
            async with asyncio.timeout(self.limits.total_timeout):
                destination = urls.parse(url, sandbox=self.sandbox)
                async with self._http.stream(
                    "POST", destination.url, content=body, headers=headers
                ) as response:
                    status_code = response.status_code
                    read = 0
                    async for chunk in response.aiter_raw():
                        read += len(chunk)
                        if read > MAX_RESPONSE_BYTES:
                            break  # the answer is the status; the connection is dropped
        except TimeoutError:
            late = f"timed out: no complete answer within {self.limits.total_timeout:g} s"
            return AttemptResult(None, elapsed(), late)
        except InvalidWebhookUrl as error:
            return AttemptResult(None, elapsed(), error.detail[:MAX_ERROR_LENGTH])
        except Exception as error:
            return AttemptResult(None, elapsed(), _describe(error))
        failure = None if 200 <= status_code < 300 else f"HTTP {status_code}"
        return AttemptResult(status_code, elapsed(), failure)


def live_secrets(endpoint: Row[Any], box: SecretBox, now: datetime) -> list[str]:
    secrets = [box.decrypt(endpoint.secret_encrypted)]
    expires = endpoint.previous_secret_expires_at
    if endpoint.previous_secret_encrypted and expires is not None and expires > now:
        secrets.append(box.decrypt(endpoint.previous_secret_encrypted))
    return secrets


def _outcome(delivery: Row[Any], ok: bool, now: datetime, rng: random.Random) -> dict[str, Any]:
    attempts = delivery.attempts + 1
    if ok:
        return {"status": "succeeded", "attempts": attempts, "delivered_at": now}
    if attempts > len(RETRY_SCHEDULE):
        return {"status": "failed", "attempts": attempts}
    delay = RETRY_SCHEDULE[attempts - 1] * rng.uniform(0.9, 1.1)
    return {"status": "pending", "attempts": attempts, "next_attempt_at": now + delay}


class Dispatcher:
    """Starts attempts as deliveries come due and slots free up, without waiting for
    earlier ones: ``dispatch`` leases what this worker may take now (at most ``in_flight``
    running in all, ``per_endpoint`` per endpoint) and starts one task per delivery. Each
    attempt is recorded once sent, together with every other that finished meanwhile
    (one transaction, one commit, for all of them); its slot stays taken until then.

    ``in_flight`` defaults to the sender's limit (more would wait for a connection of
    its pool). ``aclose`` cancels what still runs (those deliveries go out again when
    their lease runs out)."""

    def __init__(
        self,
        sessionmaker: async_sessionmaker[AsyncSession],
        sender: Sender,
        box: SecretBox,
        *,
        in_flight: int | None = None,
        rng: random.Random | None = None,
    ) -> None:
        self._sessionmaker = sessionmaker
        self._sender = sender
        self._box = box
        self._in_flight = in_flight or sender.limits.in_flight
        self._per_endpoint = sender.limits.per_endpoint
        self._rng = rng or random.Random()  # noqa: S311 - jitter, not security
        self._tasks: set[asyncio.Task[None]] = set()
        self._running: dict[str, int] = {}
        self._settled = asyncio.Event()
        self._unrecorded: list[_Finished] = []
        self._recorder: asyncio.Task[None] | None = None

    async def dispatch(self, now: datetime) -> int:
        """Lease the deliveries due at ``now`` that fit the free slots and start them;
        returns how many were started."""
        self._settled.clear()
        free = self._in_flight - len(self._tasks)
        if free <= 0:
            return 0
        busy = {endpoint_id: count for endpoint_id, count in self._running.items() if count}

        async def claim(session: AsyncSession) -> tuple[Sequence[Row[Any]], dict[str, Row[Any]]]:
            rows = await repository.claim_due(
                session,
                now,
                now + LEASE,
                free,
                per_endpoint=self._per_endpoint,
                busy=busy,
            )
            ids = sorted({row.endpoint_id for row in rows})
            return rows, await repository.endpoints_by_id(session, ids)

        deliveries, endpoints = await run_in_transaction(self._sessionmaker, claim)
        for delivery in deliveries:
            endpoint_id = delivery.endpoint_id
            self._running[endpoint_id] = self._running.get(endpoint_id, 0) + 1
            task = asyncio.create_task(
                self._attempt(delivery, endpoints[endpoint_id], now),
                name=f"webhook delivery {delivery.id}",
            )
            self._tasks.add(task)
            task.add_done_callback(functools.partial(self._finished, endpoint_id=endpoint_id))
        return len(deliveries)

    def _finished(self, task: asyncio.Task[None], endpoint_id: str) -> None:
        self._tasks.discard(task)
        left = self._running.get(endpoint_id, 1) - 1
        if left:
            self._running[endpoint_id] = left
        else:
            self._running.pop(endpoint_id, None)
        self._settled.set()
        if not task.cancelled() and (error := task.exception()) is not None:
            logger.error("webhook delivery task failed", exc_info=error)

    async def wait(self, seconds: float) -> None:
        """Sleep until an attempt finishes (one that finished since the last ``dispatch``
        counts) or ``seconds`` pass."""
        try:
            async with asyncio.timeout(seconds):
                await self._settled.wait()
        except TimeoutError:
            pass

    async def drain(self) -> None:
        """Wait until every started attempt is sent and recorded."""
        while self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)

    async def aclose(self) -> None:
        tasks = [*self._tasks, *([self._recorder] if self._recorder else [])]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    async def _attempt(self, delivery: Row[Any], endpoint: Row[Any], now: datetime) -> None:
        body = delivery.payload.encode()
        started = time.perf_counter()
        try:
            headers = signature_headers(
                live_secrets(endpoint, self._box, now), delivery.event_id, utc_now(), body
            )
            headers["content-type"] = "application/json"
            headers["user-agent"] = "Purser-Webhooks/1"
            result = await self._sender.post(endpoint.url, body, headers)
        except Exception as error:
            # Signing failed (a secret that no longer decrypts): still this attempt's failure.
            latency = int((time.perf_counter() - started) * 1000)
            result = AttemptResult(None, latency, _describe(error))
        finished = _Finished(
            delivery, result, _outcome(delivery, result.error is None, now, self._rng), now
        )
        self._unrecorded.append(finished)
        if self._recorder is None or self._recorder.done():
            self._recorder = asyncio.create_task(self._record(), name="webhook attempt recorder")
        # The slot stays taken until the attempt is recorded (or given up on).
        await finished.recorded

    async def _record(self) -> None:
        """Write finished attempts, all that are waiting in one transaction (one commit
        for many attempts); if that fails, each in its own, so a bad one fails alone."""
        while self._unrecorded:
            batch = self._unrecorded[:RECORD_BATCH]
            del self._unrecorded[:RECORD_BATCH]
            try:
                await run_in_transaction(self._sessionmaker, functools.partial(_write, batch=batch))
            except Exception:
                for one in batch:
                    try:
                        await run_in_transaction(
                            self._sessionmaker, functools.partial(_write, batch=[one])
                        )
                    except Exception:
                        # Its lease runs out and it is tried again: at least once.
                        logger.exception(
                            "recording an attempt of webhook delivery %s failed", one.delivery.id
                        )
            for one in batch:
                if not one.recorded.done():
                    one.recorded.set_result(None)


@dataclass(slots=True)
class _Finished:
    delivery: Row[Any]
    result: AttemptResult
    #: The delivery's new columns (``_outcome``).
    values: dict[str, Any]
    now: datetime
    recorded: asyncio.Future[None] = field(
        default_factory=lambda: asyncio.get_running_loop().create_future()
    )


#: Most attempts recorded in one transaction.
RECORD_BATCH: Final = 200


async def _write(session: AsyncSession, batch: list[_Finished]) -> None:
    # Endpoint rows are locked in id order, as every worker locks them, so two workers'
    # batches never deadlock; the sort is stable, keeping one endpoint's attempts in order.
    for one in sorted(batch, key=lambda one: one.delivery.endpoint_id):
        ok = one.result.error is None
        await repository.record_attempt(
            session,
            one.delivery.id,
            {
                "attempt": one.values["attempts"],
                "status_code": one.result.status_code,
                "latency_ms": one.result.latency_ms,
                "error": one.result.error,
                "next_retry_at": one.values.get("next_attempt_at"),
            },
            one.values,
        )
        await repository.mark_endpoint_health(
            session, one.delivery.endpoint_id, ok=ok, now=one.now, disable_after=DISABLE_AFTER
        )


async def deliver_due(
    sessionmaker: async_sessionmaker[AsyncSession],
    sender: Sender,
    box: SecretBox,
    *,
    now: datetime,
    batch: int = 50,
    rng: random.Random | None = None,
) -> int:
    """One pass: lease up to ``batch`` deliveries due at ``now`` (no more than the
    sender's ``in_flight``, at most ``per_endpoint`` of each endpoint), attempt each once,
    concurrently, and wait for all to be recorded; returns how many were attempted."""
    in_flight = min(batch, sender.limits.in_flight)
    dispatcher = Dispatcher(sessionmaker, sender, box, in_flight=in_flight, rng=rng)
    try:
        started = await dispatcher.dispatch(now)
        await dispatcher.drain()
    finally:
        await dispatcher.aclose()
    return started
