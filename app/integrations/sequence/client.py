"""An async client of the GetSequence Platform API v1: accounts and transfers (§11.1-§11.6),
built as §12 advises.

One ``httpx.AsyncClient`` per ``SequenceClient`` sends ``Authorization: Bearer <key>``,
``Accept: application/json`` and ``x-called-reason`` on every request (§2.4, §3). Answers
are unwrapped from the ``{data, requestId}`` envelope; failures become the typed errors of
``app.integrations.sequence.errors`` (the mapping of §12.2), the body read as JSON when it
is the error envelope and as text otherwise (a gateway's HTML 502, the plain-text 404 of
an unsupported method, §3), keeping ``requestId``.

Retries are tenacity's (``_call``), bounded by ``max_attempts``:

- **reads** retry on 429, 5xx and transport errors (timeouts included), §12.3;
- **``POST /transfers``** retries on the same, and on 409 ``TRANSFER_IN_PROGRESS``, always
  with the same ``idempotency-key`` and the byte-identical body, so that Sequence replays
  the first attempt's 201 instead of moving money twice (§7); it never retries a 400, 401
  or 403. When the retries run out without a definite answer it raises
  ``SequenceAmbiguous``: the transfer is unknown, not failed (§12.8).

Between attempts the client waits ``Retry-After`` seconds after a 429 (1 s when the header
is missing, not a number or not positive, §5), plus a little jitter; otherwise an
exponential backoff with jitter. Every request, retries included, first takes a slot of
the key's ``RequestBudget`` (a little under 100 a minute, §12.4).
"""

import json
import logging
import math
import random
import re
import urllib.parse
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from types import TracebackType
from typing import Any, Final, Self, TypeVar

import httpx
from pydantic import BaseModel, ValidationError
from tenacity import (
    AsyncRetrying,
    RetryCallState,
    retry_if_exception,
    stop_after_attempt,
    stop_after_delay,
    wait_exponential,
    wait_exponential_jitter,
)
from tenacity.wait import wait_base

from app.integrations.sequence.budget import DEFAULT_PER_MINUTE, RequestBudget, budget_for
from app.integrations.sequence.errors import (
    INVALID_PARAMETERS,
    SequenceAmbiguous,
    SequenceAuthError,
    SequenceError,
    SequenceIdempotencyMismatch,
    SequenceInvalid,
    SequenceMaxAmountError,
    SequenceNotFound,
    SequencePermissionError,
    SequenceRateLimited,
    SequenceServerError,
    SequenceUnavailable,
)
from app.integrations.sequence.schemas import (
    Account,
    AccountPage,
    AccountSummary,
    Transfer,
    TransferPage,
)

logger = logging.getLogger("purser.sequence")

Model = TypeVar("Model", bound=BaseModel)
# A query string as httpx takes it: pairs in order, a name repeated for an array (§6).
_Query = list[tuple[str, str | int | float | bool | None]]

#: Smallest transfer Sequence accepts: $1.00 (§1, §11.6).
MIN_TRANSFER_CENTS: Final = 100
#: Largest ``pageSize`` Sequence accepts (§6); ``list_accounts`` walks pages this big.
MAX_PAGE_SIZE: Final = 100
#: ``idempotency-key``: 1 to 36 characters of ``[A-Za-z0-9._:/|-]`` (§7). A UUID fits.
IDEMPOTENCY_KEY: Final = re.compile(r"[A-Za-z0-9._:/|-]{1,36}")
#: A transfer's ``description`` is an ACH label: at most 10 letters, digits, spaces (§11.6).
DESCRIPTION: Final = re.compile(r"[A-Za-z0-9 ]{0,10}")

# What a 429 without a usable ``Retry-After`` waits, and the floor of any 429 wait (§5,
# §12.3), plus the jitter §5 asks for so that clients of one key do not retry in step.
_RETRY_AFTER_FALLBACK: Final = 1.0
_RETRY_AFTER_JITTER: Final = 0.25
# A walk over a list stops here even if Sequence keeps saying there is a next page: 100 000
# accounts is far beyond any organisation, and a loop forever is worse than a short list.
_MAX_PAGES: Final = 1000
# Polls of ``wait_for_transfer`` grow by half each time up to this many seconds: internal
# transfers settle in seconds, and ACH ones in days are polled by a caller's schedule.
_MAX_POLL_INTERVAL: Final = 5.0
_INVALID_CODES: Final = frozenset(
    {INVALID_PARAMETERS, "TRANSFER_SOURCE_NOT_FOUND", "TRANSFER_DESTINATION_NOT_FOUND"}
)
_HTML_TAG: Final = re.compile(r"<[^>]*>")


@dataclass(frozen=True, slots=True)
class _Answer:
    """A 2xx unwrapped: its status, the envelope's ``data`` and ``requestId``."""

    status: int
    data: Any
    request_id: str | None


def retry_after_seconds(value: str | None) -> float | None:
    """``Retry-After`` as seconds, or ``None`` when missing, not a number, not finite or not
    positive (n8n's reading, §5; the client then waits 1 s)."""
    if value is None:
        return None
    try:
        seconds = float(value.strip())
    except ValueError:
        return None
    return seconds if math.isfinite(seconds) and seconds > 0 else None


def error_from_response(response: httpx.Response) -> SequenceError:
    """The typed error of a non-2xx ``response`` (§4.1, §12.2).

    The body is read as the ``{error: {code, message}, requestId}`` envelope when it is
    one; otherwise ``code`` is ``None`` and ``message`` is the body's text (tags of an
    HTML page removed, at most 200 characters) or the reason phrase.
    """
    status = response.status_code
    code, message, request_id = _read_error_body(response)
    fields: dict[str, Any] = {"status": status, "code": code, "request_id": request_id}
    if status == 401:
        return SequenceAuthError(message, **fields)
    if status == 403 and code == "MAXIMUM_AMOUNT_EXCEEDED":
        return SequenceMaxAmountError(message, **fields)
    if status == 403 and code == "ACCESS_DENIED":
        return SequencePermissionError(message, **fields)
    if status == 404:
        return SequenceNotFound(message, **fields)
    if status == 400 and code == "IDEMPOTENCY_KEY_MISMATCH":
        return SequenceIdempotencyMismatch(message, **fields)
    if status == 400 and code in _INVALID_CODES:
        return SequenceInvalid(message, **fields)
    if status == 429:
        retry_after = retry_after_seconds(response.headers.get("Retry-After"))
        return SequenceRateLimited(message, retry_after=retry_after, **fields)
    if status >= 500:
        return SequenceServerError(message, **fields)
    return SequenceError(message, **fields)


def _read_error_body(response: httpx.Response) -> tuple[str | None, str, str | None]:
    try:
        body = response.json()
    except ValueError:  # not JSON (json.JSONDecodeError and UnicodeDecodeError are both)
        body = None
    if isinstance(body, dict) and isinstance(body.get("error"), dict):
        error = body["error"]
        code = error.get("code")
        message = error.get("message")
        request_id = body.get("requestId")
        return (
            code if isinstance(code, str) else None,
            message if isinstance(message, str) and message else response.reason_phrase,
            request_id if isinstance(request_id, str) else None,
        )
    text = " ".join(_HTML_TAG.sub(" ", response.text).split())[:200]
    return None, text or response.reason_phrase, None


def _read_answer(response: httpx.Response) -> _Answer:
    """The envelope of a 2xx; a body that is not ``{data, requestId}`` raises
    ``SequenceServerError`` (retried: it is what a truncated answer looks like, §13.7)."""
    try:
        body = response.json()
    except ValueError:
        body = None
    if not isinstance(body, dict) or "data" not in body:
        raise SequenceServerError(
            "the answer is not a {data, requestId} JSON envelope",
            status=response.status_code,
            code=None,
        )
    request_id = body.get("requestId")
    return _Answer(
        response.status_code, body["data"], request_id if isinstance(request_id, str) else None
    )


def _parse(model: type[Model], answer: _Answer) -> Model:
    """``answer.data`` as ``model``; a shape the schemas cannot read raises a
    ``SequenceError`` with code ``UNEXPECTED_RESPONSE`` (``definite`` is ``False``)."""
    try:
        return model.model_validate(answer.data)
    except ValidationError as error:
        raise SequenceError(
            f"unexpected {model.__name__} from Sequence: {error.error_count()} invalid fields",
            status=answer.status,
            code="UNEXPECTED_RESPONSE",
            request_id=answer.request_id,
        ) from error


def _worth_retrying(error: BaseException) -> bool:
    """What §12.3 retries: 429, 5xx, transport errors and timeouts, and 409 (a write still
    in flight; reads never get one)."""
    if isinstance(error, SequenceRateLimited | SequenceServerError | SequenceUnavailable):
        return True
    return isinstance(error, SequenceError) and error.status == 409


def _invalid(message: str) -> SequenceInvalid:
    """A request refused before it is sent: no status, Sequence's validation code."""
    return SequenceInvalid(message, status=None, code=INVALID_PARAMETERS)


class _RetryWait(wait_base):
    """How long tenacity waits before the next attempt: ``Retry-After`` (at least 1 s) plus
    up to 0.25 s after a 429 (§5, §12.3); otherwise ``initial``·2ⁿ⁻¹ plus up to
    ``initial`` of jitter, at most ``maximum`` seconds."""

    def __init__(self, initial: float, maximum: float) -> None:
        self._backoff = wait_exponential_jitter(multiplier=initial, max=maximum, jitter=initial)

    def __call__(self, retry_state: RetryCallState) -> float:
        outcome = retry_state.outcome
        error = outcome.exception() if outcome is not None and outcome.failed else None
        if isinstance(error, SequenceRateLimited):
            asked = error.retry_after or _RETRY_AFTER_FALLBACK
            # Jitter, not a secret: the standard generator is right here.
            jitter = random.uniform(0, _RETRY_AFTER_JITTER)  # noqa: S311
            return max(asked, _RETRY_AFTER_FALLBACK) + jitter
        return self._backoff(retry_state)


class _PollWait(wait_base):
    """Between polls of ``wait_for_transfer``: ``interval``·1.5ⁿ⁻¹ up to 5 s, shortened so
    that the last poll falls on the deadline rather than before it."""

    def __init__(self, interval: float, timeout: float) -> None:
        self._timeout = timeout
        self._backoff = wait_exponential(
            multiplier=interval, exp_base=1.5, min=interval, max=max(interval, _MAX_POLL_INTERVAL)
        )

    def __call__(self, retry_state: RetryCallState) -> float:
        elapsed = retry_state.seconds_since_start or 0.0
        return max(0.0, min(self._backoff(retry_state), self._timeout - elapsed))


def _log_retry(method: str, path: str) -> Callable[[RetryCallState], None]:
    def log(retry_state: RetryCallState) -> None:
        outcome = retry_state.outcome
        error = outcome.exception() if outcome is not None and outcome.failed else None
        # The error's repr: status, code, message and requestId; never a header or a body.
        logger.warning(
            "sequence %s %s: attempt %d failed with %r; retrying in %.2f s",
            method,
            path,
            retry_state.attempt_number,
            error,
            retry_state.upcoming_sleep,
        )

    return log


def _last_outcome(retry_state: RetryCallState) -> Any:
    """When polling stops at the deadline: the last transfer seen, or its last error."""
    assert retry_state.outcome is not None
    return retry_state.outcome.result()


def _rfc3339(value: datetime, field: str) -> str:
    """``value`` in UTC with a ``Z`` (§6, §12.6); a naive datetime raises ``SequenceInvalid``
    (Sequence rejects values without an offset)."""
    if value.tzinfo is None or value.utcoffset() is None:
        raise _invalid(f"{field} must be a timezone-aware datetime")
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z")


def _segment(value: str, field: str) -> str:
    """An id as one path segment: non-empty, percent-encoded (ids are opaque, §1)."""
    if not value:
        raise _invalid(f"{field} must not be empty")
    return urllib.parse.quote(value, safe="")


def _check_page(page: int, page_size: int) -> None:
    if page < 1:
        raise _invalid("page must be at least 1")
    if not 1 <= page_size <= MAX_PAGE_SIZE:
        raise _invalid(f"page_size (pageSize) must be from 1 to {MAX_PAGE_SIZE}")


def transfer_body(
    *,
    idempotency_key: str,
    source_account_id: str,
    destination_account_id: str,
    amount_in_cents: int,
    description: str | None = None,
    simulation: bool = False,
) -> bytes:
    """The JSON body of ``POST /transfers``, after the checks of §12.7.1 and §7.

    Raises ``SequenceInvalid`` (``status=None``, ``code="INVALID_PARAMETERS"``, the message
    naming the field) when ``idempotency_key`` is not 1-36 characters of
    ``[A-Za-z0-9._:/|-]``, an account id is empty, source equals destination,
    ``amount_in_cents`` is not an integer of at least 100 cents, or ``description`` is over
    10 characters or holds anything but ASCII letters, digits and spaces. An empty
    description is left out, as n8n does (§11.6).
    """
    if not isinstance(idempotency_key, str) or not IDEMPOTENCY_KEY.fullmatch(idempotency_key):
        raise _invalid("idempotency_key must be 1 to 36 characters of A-Z a-z 0-9 . _ : / | -")
    if not isinstance(source_account_id, str) or not source_account_id:
        raise _invalid("source_account_id (sourceAccountId) must be a non-empty string")
    if not isinstance(destination_account_id, str) or not destination_account_id:
        raise _invalid("destination_account_id (destinationAccountId) must be a non-empty string")
    if source_account_id == destination_account_id:
        raise _invalid("destination_account_id (destinationAccountId) must differ from the source")
    # bool is an int in Python; Sequence's schema would refuse ``true`` as an amount.
    if type(amount_in_cents) is not int or amount_in_cents < MIN_TRANSFER_CENTS:
        raise _invalid(
            f"amount_in_cents (amountInCents) must be an integer of at least "
            f"{MIN_TRANSFER_CENTS} cents ($1.00)"
        )
    if description is not None and (
        not isinstance(description, str) or not DESCRIPTION.fullmatch(description)
    ):
        raise _invalid(
            "description must be at most 10 characters of ASCII letters, digits and spaces"
        )
    if not isinstance(simulation, bool):
        raise _invalid("simulation must be a boolean")
    payload: dict[str, Any] = {
        "sourceAccountId": source_account_id,
        "destinationAccountId": destination_account_id,
        "amountInCents": amount_in_cents,
    }
    if description:
        payload["description"] = description
    payload["simulation"] = simulation
    return json.dumps(payload, separators=(",", ":")).encode()


class SequenceClient:
    """The GetSequence Platform API v1 for one API key (§12).

    ``base_url`` includes the version prefix, e.g. ``https://api.getsequence.io/platform/v1``
    (production) or ``http://127.0.0.1:8800/platform/v1`` (the sandbox). ``timeout`` is
    seconds per attempt (connecting gets at most 5 of them). ``max_attempts`` bounds the
    attempts of one call, retries included (n8n makes 6, §5). ``called_reason`` is sent as
    ``x-called-reason`` (§2.4). ``requests_per_minute`` is the key's budget, shared by every
    client of that key in the process (``budget_for``). ``retry_wait_initial`` and
    ``retry_wait_max`` shape the backoff between attempts that did not get a 429.

    Use as ``async with SequenceClient(...) as sequence:``; ``aclose`` does the same.
    Every method raises the errors of ``app.integrations.sequence.errors``; reads raise
    ``SequenceRateLimited``, ``SequenceServerError`` or ``SequenceUnavailable`` only once
    their retries are exhausted.
    """

    def __init__(
        self,
        api_key: str,
        base_url: str,
        *,
        timeout: float = 10.0,
        max_attempts: int = 5,
        transport: httpx.AsyncBaseTransport | None = None,
        called_reason: str = "purser",
        requests_per_minute: int = DEFAULT_PER_MINUTE,
        retry_wait_initial: float = 0.5,
        retry_wait_max: float = 10.0,
    ) -> None:
        if max_attempts < 1:
            raise ValueError("max_attempts must be at least 1")
        headers = {"Authorization": f"Bearer {api_key}", "Accept": "application/json"}
        if called_reason:
            headers["x-called-reason"] = called_reason
        self._http = httpx.AsyncClient(
            base_url=base_url,
            headers=headers,
            timeout=httpx.Timeout(timeout, connect=min(timeout, 5.0)),
            transport=transport,
        )
        self._max_attempts = max_attempts
        self._wait = _RetryWait(retry_wait_initial, retry_wait_max)
        self._budget: RequestBudget = budget_for(api_key, requests_per_minute)

    def __repr__(self) -> str:
        return f"SequenceClient(base_url={str(self._http.base_url)!r})"

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
        """Close the connections."""
        await self._http.aclose()

    # --- Accounts (§11.1, §11.2) ---------------------------------------------------------

    async def list_accounts(
        self, type: str | None = None, *, include_deleted: bool = False
    ) -> list[AccountSummary]:
        """Every account of the key's organisation, walking ``GET /accounts`` at
        ``pageSize=100`` until ``hasNextPage`` is not true or a page is empty (§6, §12.5).

        ``type`` is ``INCOME_SOURCE``, ``POD`` or ``EXTERNAL_ACCOUNT`` (all when ``None``);
        ``include_deleted`` asks for ``state=ALL``. Items carry no balance (§10.1). Pages
        drift while being walked (§6), so an account seen twice is kept once, at its first
        place.
        """
        accounts: dict[str, AccountSummary] = {}
        base: _Query = [("pageSize", MAX_PAGE_SIZE)]
        if type is not None:
            base.append(("type", type))
        if include_deleted:
            base.append(("state", "ALL"))
        # Walking pages, not retrying: each page's own request retries through tenacity.
        for page in range(1, _MAX_PAGES + 1):
            answer = await self._call("GET", "/accounts", params=[*base, ("page", page)])
            result = _parse(AccountPage, answer)
            for item in result.items:
                accounts.setdefault(item.id, item)
            if not result.has_next_page or not result.items:
                break
        return list(accounts.values())

    async def get_account(self, account_id: str) -> Account:
        """``GET /accounts/{id}`` (§11.2): the account with its ``balance`` (cents) and
        account numbers. Raises ``SequenceNotFound`` (``ACCOUNT_NOT_FOUND``)."""
        path = f"/accounts/{_segment(account_id, 'account_id')}"
        return _parse(Account, await self._call("GET", path))

    # --- Transfers (§11.3-§11.6) ---------------------------------------------------------

    async def list_transfers(
        self,
        account_ids: list[str],
        *,
        status: str | None = None,
        direction: str | None = None,
        origin: str | None = None,
        from_: datetime | None = None,
        to: datetime | None = None,
        execution_mode: str | None = None,
        rule_execution_id: str | None = None,
        page: int = 1,
        page_size: int = 10,
    ) -> TransferPage:
        """One page of ``GET /transfers`` (§11.4): transfers whose source or destination is
        any of ``account_ids`` (sent as ``accountIds[]``, once per id), newest first.

        Filters take one value each and are left out when ``None`` (§12.6): ``status``
        (§8.1), ``direction``, ``origin``, ``execution_mode`` (``LIVE`` by Sequence's
        default, ``SIMULATION`` or ``ALL``), ``from_``/``to`` (aware datetimes, inclusive,
        on ``createdAt``; sent in UTC with ``Z``). ``page`` ≥ 1, ``page_size`` 1-100. An
        empty ``account_ids`` or a bad page raises ``SequenceInvalid`` before sending.
        """
        if not account_ids:
            raise _invalid("account_ids (accountIds) needs at least one account id")
        params: _Query = [("accountIds[]", id_) for id_ in account_ids]
        params += self._transfer_filters(
            status=status,
            direction=direction,
            origin=origin,
            from_=from_,
            to=to,
            execution_mode=execution_mode,
            rule_execution_id=rule_execution_id,
            page=page,
            page_size=page_size,
        )
        return _parse(TransferPage, await self._call("GET", "/transfers", params=params))

    async def list_account_transfers(
        self,
        account_id: str,
        *,
        account_role: str | None = None,
        status: str | None = None,
        direction: str | None = None,
        origin: str | None = None,
        from_: datetime | None = None,
        to: datetime | None = None,
        execution_mode: str | None = None,
        rule_execution_id: str | None = None,
        page: int = 1,
        page_size: int = 10,
    ) -> TransferPage:
        """One page of ``GET /accounts/{accountId}/transfers`` (§11.3), newest first.

        ``account_role`` is ``source``, ``destination`` or ``either`` (Sequence's default),
        lowercase; the other filters are those of ``list_transfers``.
        """
        path = f"/accounts/{_segment(account_id, 'account_id')}/transfers"
        params: _Query = []
        if account_role is not None:
            params.append(("accountRole", account_role))
        params += self._transfer_filters(
            status=status,
            direction=direction,
            origin=origin,
            from_=from_,
            to=to,
            execution_mode=execution_mode,
            rule_execution_id=rule_execution_id,
            page=page,
            page_size=page_size,
        )
        return _parse(TransferPage, await self._call("GET", path, params=params))

    async def get_transfer(self, transfer_id: str) -> Transfer:
        """``GET /transfers/{id}`` (§11.5). Raises ``SequenceNotFound``
        (``TRANSFER_NOT_FOUND``), which right after a create may be transient (§8.4): use
        ``wait_for_transfer`` to poll a new transfer."""
        path = f"/transfers/{_segment(transfer_id, 'transfer_id')}"
        return _parse(Transfer, await self._call("GET", path))

    async def create_transfer(
        self,
        *,
        idempotency_key: str,
        source_account_id: str,
        destination_account_id: str,
        amount_in_cents: int,
        description: str | None = None,
        simulation: bool = False,
    ) -> Transfer:
        """``POST /transfers`` (§11.6): move ``amount_in_cents`` (≥ 100) from the source
        to the destination; returns the transfer as created, normally ``PROCESSING``.

        ``idempotency_key`` (1-36 of ``[A-Za-z0-9._:/|-]``, §7) should be derived from our
        own record of the transfer, so that a retry of the same intent, even from another
        process, replays the first answer (the same ``id``) instead of moving money again.
        ``description`` is the ACH label (≤ 10 letters, digits, spaces). ``simulation``
        makes a dry run (``executionMode: SIMULATION``, no money moves, §9).

        Raises ``SequenceInvalid`` before sending for arguments Sequence would refuse
        (``transfer_body``), and after sending for 400 ``INVALID_PARAMETERS`` or
        ``TRANSFER_{SOURCE,DESTINATION}_NOT_FOUND``; ``SequenceIdempotencyMismatch`` when
        the key was used with another body; ``SequencePermissionError`` /
        ``SequenceMaxAmountError`` (403); ``SequenceAuthError`` (401); and
        ``SequenceAmbiguous`` when the retries ran out without a definite answer (the
        transfer may exist: call again with the same key and arguments). A shortfall is not
        an error here: the transfer later ends ``INCOMPLETE`` with ``INSUFFICIENT_FUNDS``.
        """
        body = transfer_body(
            idempotency_key=idempotency_key,
            source_account_id=source_account_id,
            destination_account_id=destination_account_id,
            amount_in_cents=amount_in_cents,
            description=description,
            simulation=simulation,
        )
        try:
            answer = await self._call(
                "POST", "/transfers", body=body, idempotency_key=idempotency_key
            )
        except SequenceError as error:
            if not _worth_retrying(error):
                raise
            # Retries ran out on an answer that does not say what happened to the writes
            # before it: an earlier attempt may have created the transfer (§12.8).
            raise SequenceAmbiguous(
                f"the outcome of POST /transfers is unknown after {self._max_attempts} "
                f"attempts; replay idempotency key {idempotency_key!r} to settle it "
                f"(last: {error})",
                status=error.status,
                code=error.code,
                request_id=error.request_id,
                idempotency_key=idempotency_key,
                attempts=self._max_attempts,
            ) from error
        return _parse(Transfer, answer)

    async def wait_for_transfer(
        self,
        transfer_id: str,
        *,
        # A deadline for a series of polls that must return the last transfer seen, which
        # cancelling one await with asyncio.timeout could not do.
        timeout: float,  # noqa: ASYNC109
        interval: float = 0.5,
        transient_404_seconds: float = 60,
    ) -> Transfer:
        """Poll ``GET /transfers/{id}`` until the transfer is terminal (§8.3) or ``timeout``
        seconds have passed; return the last transfer seen, which is not terminal if the
        timeout came first.

        Polls start ``interval`` seconds apart and grow by half each time, up to 5 s. A 404
        within ``transient_404_seconds`` of the call is the read-after-write delay of §8.4
        and is polled through; a 404 after that, or one that lasts until the timeout,
        raises ``SequenceNotFound`` (the transfer never appeared). Other errors of
        ``get_transfer`` propagate at once (it has retried them already).
        """

        def poll_again(retry_state: RetryCallState) -> bool:
            outcome = retry_state.outcome
            if outcome is None:
                return False
            if outcome.failed:
                elapsed = retry_state.seconds_since_start or 0.0
                error = outcome.exception()
                return isinstance(error, SequenceNotFound) and elapsed < transient_404_seconds
            transfer: Transfer = outcome.result()
            return not transfer.terminal

        polling = AsyncRetrying(
            stop=stop_after_delay(timeout),
            wait=_PollWait(interval, timeout),
            retry=poll_again,
            retry_error_callback=_last_outcome,
        )
        transfer: Transfer = await polling(self.get_transfer, transfer_id)
        return transfer

    # --- The wire -------------------------------------------------------------------------

    @staticmethod
    def _transfer_filters(
        *,
        status: str | None,
        direction: str | None,
        origin: str | None,
        from_: datetime | None,
        to: datetime | None,
        execution_mode: str | None,
        rule_execution_id: str | None,
        page: int,
        page_size: int,
    ) -> _Query:
        """The query of both transfer lists (§11.3): set filters only (§12.6)."""
        _check_page(page, page_size)
        params: _Query = []
        named: Iterable[tuple[str, str | None]] = (
            ("status", status),
            ("direction", direction),
            ("origin", origin),
            ("executionMode", execution_mode),
            ("rule_execution_id", rule_execution_id),
            ("from", _rfc3339(from_, "from_") if from_ is not None else None),
            ("to", _rfc3339(to, "to") if to is not None else None),
        )
        params += [(name, value) for name, value in named if value is not None]
        params += [("page", page), ("pageSize", page_size)]
        return params

    async def _call(
        self,
        method: str,
        path: str,
        *,
        params: _Query | None = None,
        body: bytes | None = None,
        idempotency_key: str | None = None,
    ) -> _Answer:
        """Send one request, retried through tenacity as the module docstring says;
        return the unwrapped 2xx or raise the last attempt's ``SequenceError``."""
        headers: dict[str, str] = {}
        if body is not None:
            headers["Content-Type"] = "application/json"
        if idempotency_key is not None:
            headers["idempotency-key"] = idempotency_key
        retrying = AsyncRetrying(
            stop=stop_after_attempt(self._max_attempts),
            wait=self._wait,
            retry=retry_if_exception(_worth_retrying),
            before_sleep=_log_retry(method, path),
            reraise=True,
        )
        answer: _Answer = await retrying(self._attempt, method, path, params, body, headers)
        return answer

    async def _attempt(
        self,
        method: str,
        path: str,
        params: _Query | None,
        body: bytes | None,
        headers: dict[str, str],
    ) -> _Answer:
        """One attempt: a slot of the budget, the request, its answer or its typed error.
        ``body`` is the same bytes object on every attempt (§12.3)."""
        await self._budget.acquire()
        try:
            response = await self._http.request(
                method, path, params=params, content=body, headers=headers
            )
        except httpx.TimeoutException as error:
            raise SequenceUnavailable(f"{method} {path} timed out ({type(error).__name__})") from (
                error
            )
        except httpx.TransportError as error:
            raise SequenceUnavailable(
                f"{method} {path} failed in transport ({type(error).__name__}: {error})"
            ) from error
        if response.is_success:
            return _read_answer(response)
        raise error_from_response(response)
