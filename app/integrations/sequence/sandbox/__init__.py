"""A fake GetSequence Platform API v1 for tests and local runs: the accounts and transfers
surface, faithful to spec §13 where it matters to an adapter. All state is in memory.

Run it with ``purser sequence-sandbox [--host 127.0.0.1] [--port 8800]
[--settle-seconds 2.0]`` and point a ``SequenceClient`` at
``http://127.0.0.1:8800/platform/v1`` with any key ``sk_sandbox_<name>``; in tests, serve
``create_sandbox_app(...)`` with uvicorn on a loopback port.

API (``/platform/v1``, ``Authorization: Bearer sk_sandbox_<1-64 of A-Za-z0-9_->``)
----------------------------------------------------------------------------------------

``GET /accounts`` (``type``, ``state``, ``page``, ``pageSize``), ``GET /accounts/{id}``,
``GET /accounts/{accountId}/transfers`` (``accountRole``, ``status``, ``direction``,
``origin``, ``executionMode``, ``from``, ``to``, ``rule_execution_id``, pages),
``GET /transfers`` (``accountIds[]`` required, the same filters), ``GET /transfers/{id}``
and ``POST /transfers`` (``idempotency-key``), with:

- the envelopes ``{data, requestId}`` and ``{error: {code, message}, requestId}`` (§3), a
  fresh ``requestId`` on every response;
- a plain-text 404 for any other path or method (§3, §13.1); the rules, external and card
  transactions and audit-log routes are not served;
- the processing order of §13.4: route, key (401 ``UNAUTHORIZED``), rate limit (429
  ``RATE_LIMIT_EXCEEDED`` with ``Retry-After``), validation (400 ``INVALID_PARAMETERS``,
  §13.8), idempotency, existence (400 ``TRANSFER_SOURCE_NOT_FOUND`` /
  ``…_DESTINATION_NOT_FOUND``, 404 ``ACCOUNT_NOT_FOUND`` / ``TRANSFER_NOT_FOUND``),
  commit; permissions are not modelled (a key may move any of its organisation's money);
- idempotency per key (§7, §13.2): the same body replays the original 201 and transfer
  (its ``PROCESSING`` snapshot, same ``id``); another body gets 400
  ``IDEMPOTENCY_KEY_MISMATCH``; a key whose first request is still running gets 409
  ``TRANSFER_IN_PROGRESS``; keys live 24 h of sandbox clock;
- transfers that move on the sandbox clock, computed lazily on each request (§13.5,
  ``state``): ``PROCESSING`` → ``PENDING`` → ``COMPLETE`` over ``settle_seconds`` (internal)
  or ``ach_settle_seconds`` (to/from an external account); ``INCOMPLETE`` /
  ``INSUFFICIENT_FUNDS`` when the source's available balance is short; holds, debits and
  credits that really move balances; simulations (``executionMode: SIMULATION``) final
  after ``simulation_seconds`` with no balance change and left out of lists unless asked
  for; a new transfer invisible to reads for ``read_after_write_delay`` (§8.4);
- organisations: every distinct key ``sk_sandbox_<name>`` is its own, created and seeded
  on first use (``seed``: ids derived from the key and the account name, so a restart
  gives the same ids); any other key gets 401.

Control (``/_fake``, no auth; JSON bodies; answers in the ``{data}`` envelope)
------------------------------------------------------------------------------

``POST /_fake/faults``
    Queue a fault: ``{"kind", "method": "*", "path": "*", "count": 1, "retry_after",
    "seconds"}``. The next ``count`` API requests whose method matches and whose path
    matches the ``fnmatch`` pattern (e.g. ``"/platform/v1/transfers*"``) get ``kind``:
    ``"500"`` (JSON ``UNEXPECTED_ERROR``), ``"502"``/``"503"``/``"504"`` (an HTML page),
    ``"429"`` (``RATE_LIMIT_EXCEEDED``, with ``Retry-After: <retry_after>`` if given, sent
    verbatim), ``"malformed_json"`` (a truncated 200), ``"timeout_before_commit"`` (the
    request is held unanswered until the client hangs up or ``seconds``, default 30, pass;
    nothing is created), ``"timeout_after_commit"`` (the request is processed and
    committed, idempotency record included, then held the same way: the client times out
    and its retry gets the replayed 201), ``"in_flight"`` (the commit waits ``seconds``,
    default 2, with the idempotency key claimed, so a concurrent retry gets 409). The
    first five are answered before routing and authentication, as a gateway would.
``GET /_fake/faults``, ``DELETE /_fake/faults``
    The queued faults; drop them all.
``POST /_fake/clock`` ``{"advance_seconds"}``; ``GET /_fake/clock``
    Move the sandbox clock forward (transfers settle, idempotency keys and rate-limit
    windows expire accordingly); read it.
``POST /_fake/transfers/{id}`` ``{"status", "error_code"}``
    Force a non-terminal transfer into ``status`` now (a failure releases its hold; a
    default ``error_code`` is ``INSUFFICIENT_FUNDS`` for ``INCOMPLETE``, ``PAYMENT_FAILED``
    for ``ERROR``); it then stays there until forced again. 409 if it is already final.
``POST /_fake/rate_limit`` ``{"per_minute", "key"}``
    Requests per minute for one key's organisation, or without ``key`` the default.
``GET /_fake/state?key=sk_sandbox_…``
    The organisation (seeded if new): ``now``, accounts with balances, every transfer (newest first,
    invisible ones included) with its description, idempotency key, holds and schedule,
    and the idempotency keys held.
``POST /_fake/accounts`` ``{"key", "accounts": [{"name", "type", "balanceInCents",
"externalAccountType"}]}``
    Add accounts to an organisation (ids derived from the name like the seeded ones).
"""

from app.integrations.sequence.sandbox.app import (
    SandboxApp,
    SandboxOptions,
    create_sandbox_app,
    run_sandbox,
)
from app.integrations.sequence.sandbox.seed import seeded_id

__all__ = ["SandboxApp", "SandboxOptions", "create_sandbox_app", "run_sandbox", "seeded_id"]
