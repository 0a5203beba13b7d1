"""``purser demo``: a scripted scenario against a running Purser sandbox, one line per step.

Every call goes through Purser's Python SDK (``purser``), as a client of the API would make
it. The scenario: a local webhook receiver on 127.0.0.1 is subscribed to
``payment.completed`` and ``invoice.paid``; a buyer agent is created with a funded wallet
(``initial_balance``, which a sandbox funds from the owner's deposit account); it buys the
cheapest in-stock catalog product it can afford; a second agent invoices it (a payment
request) and the buyer pays; the three deliveries those payments cause are awaited (at
most ``WEBHOOK_WAIT_SECONDS``) and their signatures verified with
``purser.webhooks.verify``; the buyer's final balance is read and checked against what
was paid. The webhook endpoint is deleted at the end, whatever happened before.

Each step is a ✓ or ✗ line with its key fact (ids, amounts as decimal text). A refused
step shows the server's error code and message, never a traceback.
"""

from __future__ import annotations

import asyncio
import http.server
import secrets
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Final

from purser import AsyncPurserClient, PurserError, WebhookVerificationError, webhooks
from purser import models as m
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, SpinnerColumn, TextColumn

#: How long the demo waits for the deliveries of its payments' events.
WEBHOOK_WAIT_SECONDS: Final = 15.0
#: The buyer's wallet, funded at creation (the sandbox's ``initial_balance``).
INITIAL_BALANCE: Final = Decimal("100.00")
#: What the second agent invoices the buyer.
INVOICE_AMOUNT: Final = Decimal("7.50")
CURRENCY: Final = "USDC"
EVENTS: Final = ("payment.completed", "invoice.paid")
#: Largest delivery body the receiver reads (Purser's events are a few kilobytes).
MAX_DELIVERY_BYTES: Final = 1024 * 1024
#: Every step the display counts, cleanup included.
STEP_COUNT: Final = 11
#: Exit statuses: every step passed; a step failed; the command was called wrongly.
EXIT_OK: Final = 0
EXIT_FAILED: Final = 1
EXIT_USAGE: Final = 2


class DemoFailure(Exception):
    """A step whose calls succeeded but whose outcome is not what the scenario needs."""


class MissingDeliveries(DemoFailure):
    """The awaited deliveries did not all arrive in time."""


class StepFailed(Exception):
    """A step failed; its ✗ line is already printed."""


# --- The local webhook receiver ---------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Delivery:
    """One POST to the receiver's path: the event if its signature verified, else why not."""

    event: dict[str, Any] | None
    refusal: str | None = None


class _QuietServer(http.server.ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request: Any, client_address: Any) -> None:
        # A client that hangs up mid-request is no concern of the demo's display.
        return


class WebhookReceiver:
    """An HTTP server on 127.0.0.1 that verifies every POST to its path
    (``/purser-demo/<random>``, so nothing else reaching the port is taken for Purser)
    with ``purser.webhooks.verify`` and hands the outcome to the event loop.

    The standard library's server, in a thread: it installs no signal handlers, so Ctrl-C
    stays the demo's, and the event loop is free while a delivery is read. Answers: 204
    verified, 400 not verified, 503 before the secret is known (Purser retries), 404 on
    any other path.
    """

    def __init__(self, port: int, loop: asyncio.AbstractEventLoop) -> None:
        self.path = f"/purser-demo/{secrets.token_hex(8)}"
        #: The endpoint's ``whsec_…`` secret, set once the endpoint is registered.
        self.secret: str | None = None
        self.deliveries: asyncio.Queue[Delivery] = asyncio.Queue()
        self._loop = loop
        receiver = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                receiver._handle(self)

            def log_message(self, format: str, *args: Any) -> None:
                # The demo's own lines say what arrived.
                return

        self._server = _QuietServer(("127.0.0.1", port), Handler)
        self.port = int(self._server.server_address[1])
        self._thread = threading.Thread(
            target=self._server.serve_forever, name="purser-demo-receiver", daemon=True
        )

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}{self.path}"

    def start(self) -> None:
        self._thread.start()

    async def stop(self) -> None:
        # ``shutdown`` waits for the serving loop's next poll (up to 0.5 s): not on the loop.
        await asyncio.to_thread(self._server.shutdown)
        self._server.server_close()

    def _handle(self, request: http.server.BaseHTTPRequestHandler) -> None:
        """Runs in the server's thread."""
        if request.path != self.path:
            _answer(request, 404)
            return
        try:
            length = int(request.headers.get("Content-Length") or "0")
        except ValueError:
            _answer(request, 400)
            return
        if not 0 <= length <= MAX_DELIVERY_BYTES:
            _answer(request, 413)
            return
        body = request.rfile.read(length)
        secret = self.secret
        if secret is None:
            _answer(request, 503)
            return
        try:
            delivery = Delivery(webhooks.verify(body, request.headers.items(), secret))
        except WebhookVerificationError as error:
            delivery = Delivery(None, str(error))
        try:
            self._loop.call_soon_threadsafe(self.deliveries.put_nowait, delivery)
        except RuntimeError:  # the demo has ended and its loop is closed
            _answer(request, 503)
            return
        _answer(request, 204 if delivery.event is not None else 400)

    async def collect(self, expected: set[tuple[str, str]], wait_seconds: float) -> list[Delivery]:
        """The verified deliveries received until every ``(event type, subject id)`` of
        ``expected`` has arrived (others of the owner's events may arrive too). Raises
        ``DemoFailure`` at the first delivery that does not verify, or when ``wait_seconds``
        seconds pass first, naming what is missing."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + wait_seconds
        missing = set(expected)
        verified: list[Delivery] = []
        while missing:
            try:
                delivery = await asyncio.wait_for(
                    self.deliveries.get(), max(deadline - loop.time(), 0)
                )
            except TimeoutError:
                names = ", ".join(f"{kind} {subject}" for kind, subject in sorted(missing))
                raise MissingDeliveries(
                    f"not received within {wait_seconds:g} s: {names}"
                ) from None
            if delivery.event is None:
                raise DemoFailure(f"a delivery failed signature verification: {delivery.refusal}")
            verified.append(delivery)
            missing.discard(subject_of(delivery.event))
        return verified


def _answer(request: http.server.BaseHTTPRequestHandler, status: int) -> None:
    request.send_response(status)
    request.send_header("Content-Length", "0")
    request.end_headers()


def subject_of(event: dict[str, Any]) -> tuple[str, str]:
    """``(type, id)`` of what a delivered event is about: the transaction of a
    ``payment.completed``, the payment request of an ``invoice.paid`` (``""`` when the
    payload has no such member)."""
    kind = str(event.get("type", ""))
    data = event.get("data")
    data = data if isinstance(data, dict) else {}
    member, id_field = (
        ("payment_request", "request_id")
        if kind.startswith("invoice.")
        else ("transaction", "tx_id")
    )
    inner = data.get(member)
    subject = inner.get(id_field) if isinstance(inner, dict) else None
    return kind, str(subject or "")


# --- The display ------------------------------------------------------------------------


@dataclass(slots=True)
class Step:
    title: str
    #: The key fact of a step that succeeded, shown after its ✓.
    fact: str = ""


def reason(error: Exception) -> str:
    """One line for a failed step: the server's code, status and message when it
    answered; what went wrong otherwise."""
    if isinstance(error, PurserError):
        if error.status is None:
            return f"no answer from the server: {error.detail}"
        parts = [f"{error.code or 'http_error'} ({error.status}): {error.detail}"]
        if error.param:
            parts.append(f"[param: {error.param}]")
        if error.request_id:
            parts.append(f"[request_id: {error.request_id}]")
        return " ".join(parts)
    if isinstance(error, DemoFailure):
        return str(error)
    if isinstance(error, OSError):
        return f"{error.strerror or error}"
    return f"{type(error).__name__}: {error}"


class Display:
    """A progress bar for the step under way, and above it one ✓ or ✗ line per step done.
    Lines never wrap (ids stay whole for copying)."""

    def __init__(self, console: Console) -> None:
        self.console = console
        self.progress = Progress(
            SpinnerColumn(),
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            console=console,
            transient=True,
        )
        self._task = self.progress.add_task("", total=STEP_COUNT)

    def line(self, text: str) -> None:
        self.progress.console.print(text, soft_wrap=True)

    @contextmanager
    def step(self, title: str) -> Iterator[Step]:
        """Run the body as one step: ✓ and its fact, or ✗ and why, then ``StepFailed``."""
        current = Step(title)
        self.progress.update(self._task, description=title)
        try:
            yield current
        except Exception as error:
            self.line(f"[bold red]✗[/] {escape(title)}: {escape(reason(error))}")
            raise StepFailed(title) from None
        finally:
            self.progress.advance(self._task)
        self.line(f"[bold green]✓[/] {escape(title)}: {escape(current.fact)}")


def amount(value: Decimal, currency: str) -> str:
    return f"{value:f} {currency}"


# --- The scenario -----------------------------------------------------------------------


async def _last_attempt(client: AsyncPurserClient, subscription_id: str) -> str:
    """What the server's delivery log says of the endpoint's latest attempt."""
    attempts = await client.list_webhook_deliveries(subscription_id, limit=1)
    if not attempts:
        return (
            "the server made no delivery attempt (is webhook delivery running? `purser serve` "
            "delivers unless PURSER_RUN_WEBHOOKS=false; `purser worker` does too)"
        )
    last = attempts[0]
    return (
        f"the server's last attempt: {last.event_type} status "
        f"{last.status_code} error {last.error!r}"
    )


async def _scenario(
    client: AsyncPurserClient, display: Display, receiver: WebhookReceiver, wait_seconds: float
) -> None:
    """Every step after the receiver started; raises ``StepFailed`` at the first that fails.
    Deletes the endpoint it registered in any case."""
    endpoint: m.WebhookCreated | None = None
    try:
        with display.step("Register the webhook endpoint") as step:
            endpoint = await client.create_webhook(
                receiver.url, list(EVENTS), description="purser demo receiver"
            )
            receiver.secret = endpoint.secret
            step.fact = f"{endpoint.subscription_id} for {', '.join(endpoint.events)}"
        await _payments(client, display, receiver, endpoint, wait_seconds)
    finally:
        if endpoint is not None:
            with display.step("Delete the webhook endpoint") as step:
                await client.delete_webhook(endpoint.subscription_id)
                step.fact = f"{endpoint.subscription_id} deleted"


async def _payments(
    client: AsyncPurserClient,
    display: Display,
    receiver: WebhookReceiver,
    endpoint: m.WebhookCreated,
    wait_seconds: float,
) -> None:
    tag = secrets.token_hex(3)
    with display.step("Create the buyer agent with a funded wallet") as step:
        buyer = await client.register_agent(
            f"demo-buyer-{tag}",
            initial_balance=INITIAL_BALANCE,
            currency=CURRENCY,
            description="created by purser demo",
        )
        funded = buyer.wallet.balance
        step.fact = (
            f"{buyer.agent.agent_id}, wallet {buyer.wallet.wallet_id}, "
            f"balance {amount(funded, buyer.wallet.currency)}"
        )
    currency = buyer.wallet.currency

    with display.step("Pick a catalog product") as step:
        products = [p async for p in client.list_products(in_stock_only=True)]
        affordable = [p for p in products if p.currency == currency and p.price < funded]
        if not affordable:
            raise DemoFailure(
                f"no product in stock priced in {currency} below {amount(funded, currency)} "
                f"among {len(products)} in stock (a sandbox owner gets the demo catalog with "
                "its first key unless created with --no-demo; add one with POST "
                "/api/v1/catalog/products)"
            )
        product = min(affordable, key=lambda p: (p.price, p.product_id))
        step.fact = (
            f"{product.product_id} {product.name!r} at {amount(product.price, currency)} "
            f"from {product.merchant_id}"
        )

    with display.step("Buy the product") as step:
        bought = await client.pay(
            buyer.agent.agent_id, product_id=product.product_id, purpose="purser demo purchase"
        )
        purchase = _completed(bought)
        step.fact = (
            f"{purchase.tx_id}: {amount(purchase.amount, currency)} + fee "
            f"{amount(purchase.fee, currency)} to {purchase.merchant_id}"
        )

    with display.step("Create the invoicing agent") as step:
        seller = await client.register_agent(
            f"demo-seller-{tag}", currency=currency, description="created by purser demo"
        )
        step.fact = f"{seller.agent.agent_id}, wallet {seller.wallet.wallet_id}"

    with display.step("Invoice the buyer (payment request)") as step:
        invoice = await client.create_payment_request(
            seller.agent.agent_id,
            buyer.agent.agent_id,
            INVOICE_AMOUNT,
            currency,
            description="purser demo invoice",
        )
        step.fact = (
            f"{invoice.request_id}: {amount(invoice.amount, currency)} from "
            f"{invoice.payer_agent_id} to {invoice.requester_agent_id}, {invoice.status}"
        )

    with display.step("Pay the invoice") as step:
        settled = _completed(await client.pay_payment_request(invoice.request_id))
        paid = await client.get_payment_request(invoice.request_id)
        if paid.status != "paid":
            raise DemoFailure(f"{paid.request_id} is {paid.status} after it was paid")
        step.fact = (
            f"{settled.tx_id}: {amount(settled.amount, currency)} + fee "
            f"{amount(settled.fee, currency)}, {paid.request_id} {paid.status}"
        )

    with display.step("Receive and verify the webhooks") as step:
        expected = {
            ("payment.completed", purchase.tx_id),
            ("payment.completed", settled.tx_id),
            ("invoice.paid", invoice.request_id),
        }
        try:
            verified = await receiver.collect(expected, wait_seconds)
        except MissingDeliveries as error:
            raise DemoFailure(
                f"{error}; {await _last_attempt(client, endpoint.subscription_id)}"
            ) from None
        kinds = sorted({subject_of(d.event) for d in verified if d.event is not None} & expected)
        step.fact = f"{len(expected)} signatures verified: " + ", ".join(
            f"{kind} {subject}" for kind, subject in kinds
        )

    with display.step("Read the final wallet balance") as step:
        wallet = await client.get_wallet(buyer.agent.agent_id)
        left = funded - purchase.total_cost - settled.total_cost
        if wallet.balance != left:
            raise DemoFailure(
                f"balance is {amount(wallet.balance, currency)}, but "
                f"{funded:f} - {purchase.total_cost:f} - {settled.total_cost:f} = {left:f}"
            )
        step.fact = (
            f"{amount(wallet.balance, currency)} "
            f"(= {funded:f} - {purchase.total_cost:f} - {settled.total_cost:f})"
        )


def _completed(result: m.PaymentResult) -> m.Transaction:
    """The transaction of a payment the server answered as done (a refusal has raised)."""
    transaction = result.transaction
    if not result.success or transaction is None or transaction.status != "completed":
        status = transaction.status if transaction is not None else "missing"
        raise DemoFailure(f"payment not completed (transaction {status}): {result.error}")
    return transaction


async def run_scenario(
    *,
    base_url: str,
    api_key: str,
    receiver_port: int,
    console: Console,
    wait_seconds: float = WEBHOOK_WAIT_SECONDS,
) -> bool:
    """Run every step against the Purser at ``base_url``; True when all passed."""
    display = Display(console)
    display.line(f"Purser demo against {escape(base_url)}")
    with display.progress:
        async with AsyncPurserClient(
            api_key=api_key, base_url=base_url, timeout=10.0, max_retries=2
        ) as client:
            try:
                with display.step("Start the local webhook receiver") as step:
                    try:
                        receiver = WebhookReceiver(receiver_port, asyncio.get_running_loop())
                    except OSError as error:
                        raise DemoFailure(
                            f"cannot listen on 127.0.0.1:{receiver_port}: {reason(error)} "
                            "(choose another --receiver-port, or 0 for any free port)"
                        ) from None
                    receiver.start()
                    step.fact = f"listening on {receiver.url}"
            except StepFailed:
                return False
            try:
                await _scenario(client, display, receiver, wait_seconds)
            except StepFailed:
                return False
            finally:
                await receiver.stop()
    return True


def run_demo(
    *,
    base_url: str,
    api_key: str | None,
    receiver_port: int,
    console: Console | None = None,
    wait_seconds: float = WEBHOOK_WAIT_SECONDS,
) -> int:
    """``purser demo``: the exit status (``EXIT_OK``, ``EXIT_FAILED`` when a step failed,
    ``EXIT_USAGE`` without a key)."""
    if not api_key:
        Console(stderr=True, highlight=False).print(
            "error: no API key: pass --api-key or set PURSER_API_KEY (the sk_test_… key "
            "`purser serve` printed at first start, or `purser keys create --owner …`)",
            markup=False,
            soft_wrap=True,
        )
        return EXIT_USAGE
    shown = console or Console(highlight=False)
    passed = asyncio.run(
        run_scenario(
            base_url=base_url,
            api_key=api_key,
            receiver_port=receiver_port,
            console=shown,
            wait_seconds=wait_seconds,
        )
    )
    if passed:
        shown.print("[bold green]Demo complete:[/] every step passed.", soft_wrap=True)
        return EXIT_OK
    shown.print("[bold red]Demo failed.[/]", soft_wrap=True)
    return EXIT_FAILED
