"""The Sequence rail over HTTP: the seed's gateway (``000``) under ``/api/v1/sequence``
and at the seed's own paths (``/api/pods``, ``/api/transfers``…, same handlers, so a
client written for that gateway works by changing its base URL and key), the owner's
connection and limits, and wallet funding."""

from typing import Annotated

from fastapi import APIRouter, Query, Request, status
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel
from sqlalchemy.ext.asyncio import AsyncSession

from app.api.deps import DRY_RUN, PUBLIC, AccessRoute, SessionDep, scoped
from app.api.idempotency import KEY_HEADERS, REPLAYED_HEADER, idempotency_key_of
from app.api.outcomes import call_context
from app.api.problems import AUTH_ERRORS, NOT_FOUND, Problem
from app.api.request_context import request_id_var
from app.domain.apikey.schemas import Principal, Scope
from app.domain.payment.schemas import DryRunResult
from app.domain.sequence import service as sequence_service
from app.domain.sequence import transfers as sequence_transfers
from app.domain.sequence.schemas import (
    Accounts,
    ActivityPage,
    ActivitySummary,
    ConnectionPut,
    ConnectionRead,
    FundingCreate,
    FundingRead,
    LimitsPut,
    LimitsRead,
    Pod,
    PodDetail,
    TotalBalance,
    TransferCreate,
    TransferResult,
    TransferSummary,
)
from app.domain.sequence.service import Connection, Rail

#: Moving the operator's bank money: the ``sequence`` scope, owner keys only.
Operator = Annotated[Principal, scoped(Scope.sequence)]
UPSTREAM: dict[int | str, dict[str, object]] = {
    409: {"model": Problem, "description": "No Sequence connection (`sequence_not_connected`)"},
    502: {"model": Problem, "description": "Sequence failed or could not be reached"},
}


def _rail(request: Request) -> Rail:
    rail: Rail = request.app.state.sequence
    return rail


async def _connection(principal: Principal, session: AsyncSession, request: Request) -> Connection:
    """The caller's owner's Sequence connection (409 ``sequence_not_connected``), resolved
    in the route's body: after the request was validated. The request's transaction ends
    here: no database connection is held while Sequence answers."""
    connection = await _rail(request).connection(session, principal.owner_id)
    await session.commit()
    return connection


async def _transfer_detail(
    transfer_id: str, principal: Principal, session: AsyncSession, request: Request
) -> TransferSummary:
    sequence_id = await sequence_service.sequence_id_of(session, principal.owner_id, transfer_id)
    connection = await _connection(principal, session, request)
    return await sequence_service.transfer_detail(_rail(request), connection, sequence_id)


def _gateway_router(prefix: str) -> APIRouter:
    """The seed's gateway routes, mounted under ``prefix``."""
    router = APIRouter(
        prefix=prefix,
        tags=["sequence"],
        responses={**AUTH_ERRORS, **UPSTREAM},
        route_class=AccessRoute,
    )

    @router.get("/pods", response_model=list[Pod])
    async def list_pods(principal: Operator, session: SessionDep, request: Request) -> list[Pod]:
        """Every pod with its balance in cents and as "$1,500.00" (balances cached briefly
        per owner: Sequence allows 100 requests a minute)."""
        connection = await _connection(principal, session, request)
        return await sequence_service.pods(_rail(request), connection, principal.owner_id)

    @router.get("/pods/balance", response_model=TotalBalance)
    async def total_balance(
        principal: Operator, session: SessionDep, request: Request
    ) -> TotalBalance:
        """The total over all pods, and how many there are."""
        connection = await _connection(principal, session, request)
        return await sequence_service.total_balance(_rail(request), connection, principal.owner_id)

    @router.get("/pods/detail/{pod_id}", response_model=PodDetail, responses=NOT_FOUND)
    async def pod_detail(
        pod_id: str, principal: Operator, session: SessionDep, request: Request
    ) -> PodDetail:
        """One pod, read now, with its five most recent transfers."""
        connection = await _connection(principal, session, request)
        return await sequence_service.pod_detail(_rail(request), connection, pod_id)

    @router.get(
        "/pods/{pod_name}/balance",
        response_model=Pod,
        responses={**NOT_FOUND, 409: {"model": Problem, "description": "Several pods match"}},
    )
    async def pod_balance(
        pod_name: str, principal: Operator, session: SessionDep, request: Request
    ) -> Pod:
        """A pod by name: case-insensitive, else the one pod whose name contains it; 404 if
        none, 409 if several."""
        connection = await _connection(principal, session, request)
        return await sequence_service.pod_by_name(
            _rail(request), connection, principal.owner_id, pod_name
        )

    @router.get("/pods/{org_id}/{pod_id}", response_model=PodDetail, responses=NOT_FOUND)
    async def pod_detail_in_org(
        org_id: str, pod_id: str, principal: Operator, session: SessionDep, request: Request
    ) -> PodDetail:
        """As `/pods/detail/{pod_id}`; `org_id` is accepted and ignored (a Platform API key
        belongs to one organisation)."""
        del org_id
        connection = await _connection(principal, session, request)
        return await sequence_service.pod_detail(_rail(request), connection, pod_id)

    @router.get("/accounts", response_model=Accounts)
    async def list_accounts(
        principal: Operator,
        session: SessionDep,
        request: Request,
        org_id: Annotated[str | None, Query(max_length=64, description="Ignored")] = None,
    ) -> Accounts:
        """Pods, ports (income sources) and external accounts, with balances."""
        del org_id
        connection = await _connection(principal, session, request)
        return await sequence_service.accounts(_rail(request), connection, principal.owner_id)

    @router.get("/activity/summary", response_model=ActivitySummary)
    async def activity_summary(
        principal: Operator, session: SessionDep, request: Request
    ) -> ActivitySummary:
        """This month's transfers, rule executions among them, and completed income."""
        connection = await _connection(principal, session, request)
        return await sequence_service.activity_summary(
            _rail(request), connection, principal.owner_id, request.app.state.clock()
        )

    @router.get("/activity", response_model=ActivityPage)
    async def activity(
        principal: Operator,
        session: SessionDep,
        request: Request,
        first: Annotated[int, Query(ge=1, le=100)] = 10,
        after: Annotated[str | None, Query(max_length=12)] = None,
        statuses: Annotated[str | None, Query(max_length=200)] = None,
        directions: Annotated[str | None, Query(max_length=200)] = None,
        activity_types: Annotated[str | None, Query(max_length=200)] = None,
        org_id: Annotated[str | None, Query(max_length=64, description="Ignored")] = None,
    ) -> ActivityPage:
        """Transfers across the owner's accounts, newest first; filters are
        comma-separated, in the seed's words (INCOMING, OUTGOING, FAILED…) or Sequence's."""
        del org_id
        connection = await _connection(principal, session, request)
        return await sequence_service.activity(
            _rail(request),
            connection,
            principal.owner_id,
            first=first,
            after=after,
            statuses=statuses,
            directions=directions,
            activity_types=activity_types,
        )

    @router.get("/transfers/{transfer_id}", response_model=TransferSummary, responses=NOT_FOUND)
    async def transfer_detail(
        transfer_id: str, principal: Operator, session: SessionDep, request: Request
    ) -> TransferSummary:
        """A transfer by Sequence's id (or Purser's `seqt_…` / `fund_…`)."""
        return await _transfer_detail(transfer_id, principal, session, request)

    @router.get(
        "/activity/{org_id}/{transfer_id}", response_model=TransferSummary, responses=NOT_FOUND
    )
    async def transfer_detail_in_org(
        org_id: str, transfer_id: str, principal: Operator, session: SessionDep, request: Request
    ) -> TransferSummary:
        """As `/transfers/{transfer_id}`; `org_id` is accepted and ignored."""
        del org_id
        return await _transfer_detail(transfer_id, principal, session, request)

    @router.post(
        "/transfers",
        response_model=TransferResult,
        responses={
            202: {"model": TransferResult, "description": "Sent; Sequence has not finished"},
            400: {"model": Problem, "description": "A limit, or Sequence refused or failed it"},
        },
        dependencies=[DRY_RUN, KEY_HEADERS],
    )
    async def create_transfer(
        payload: TransferCreate, principal: Operator, session: SessionDep, request: Request
    ) -> Response:
        """Move money between the owner's Sequence accounts, through the per-transfer and
        daily limits (reserved before Sequence is called) and the audit trail. 200 with
        Sequence's transfer id once complete; 202 `{"status": "pending", …}` while
        Sequence works on it (the poller settles it); 400 for a limit or a transfer
        Sequence refused or failed. Send an `Idempotency-Key`: a retry returns the same
        transfer, never a second one. `Dry-Run: true`: the checks and the limits'
        reservation, rolled back, without calling Sequence; 200 with the decision and the
        limits as they would stand (`DryRunResult`, amounts in dollars)."""
        if getattr(request.state, "dry_run", False):
            plan = await sequence_transfers.dry_run_transfer(
                session,
                _rail(request),
                request.app.state.settings,
                call_context(request, principal),
                payload,
                server_now=request.app.state.clock(),
            )
            return JSONResponse(plan.model_dump(mode="json"))
        key = idempotency_key_of(request)
        # The key's lookup is done: no connection is held while Sequence answers (the
        # transfer's own transactions take theirs).
        await session.commit()
        result, replayed = await sequence_transfers.create_transfer(
            request.app.state.sessionmaker,
            _rail(request),
            request.app.state.settings,
            principal,
            payload,
            client_key=key,
            body=await request.body(),
            request_id=request_id_var.get(),
            now=request.app.state.clock(),
        )
        code = status.HTTP_200_OK if result.status == "completed" else status.HTTP_202_ACCEPTED
        headers = {REPLAYED_HEADER: "true"} if replayed else None
        return JSONResponse(result.model_dump(mode="json"), status_code=code, headers=headers)

    return router


router = _gateway_router("/sequence")
#: The same gateway at the seed's own paths (``/api/...``, outside ``/api/v1``).
seed_router = _gateway_router("/api")


class SeedHealth(BaseModel):
    status: str


@seed_router.get("/health", response_model=SeedHealth, dependencies=[PUBLIC])
async def seed_health() -> SeedHealth:
    """The seed gateway's health check: no key needed."""
    return SeedHealth(status="ok")


settings_router = APIRouter(
    prefix="/sequence",
    tags=["sequence"],
    responses=AUTH_ERRORS,
    route_class=AccessRoute,
)


@settings_router.get("/connection", response_model=ConnectionRead)
async def get_connection(
    principal: Operator, session: SessionDep, request: Request
) -> ConnectionRead:
    """Which Sequence organisation this owner's gateway talks to: its own key, the
    deployment's default, or the sandbox Sequence."""
    return await sequence_service.get_connection(session, _rail(request), principal.owner_id)


@settings_router.put(
    "/connection",
    response_model=ConnectionRead,
    responses={409: {"model": Problem, "description": "Keys cannot be stored here"}},
)
async def put_connection(
    payload: ConnectionPut, principal: Operator, session: SessionDep, request: Request
) -> ConnectionRead:
    """Store a Platform API key for this owner, encrypted at rest (shown back only by its
    last four characters)."""
    return await sequence_service.put_connection(
        session, _rail(request), principal, payload, request_id_var.get()
    )


@settings_router.delete("/connection", response_model=ConnectionRead)
async def delete_connection(
    principal: Operator, session: SessionDep, request: Request
) -> ConnectionRead:
    """Forget this owner's key (the default connection, if any, applies again)."""
    return await sequence_service.delete_connection(
        session, _rail(request), principal, request_id_var.get()
    )


@settings_router.get("/limits", response_model=LimitsRead)
async def get_limits(principal: Operator, session: SessionDep, request: Request) -> LimitsRead:
    """The per-transfer and daily limits (cents) and today's use."""
    return await sequence_service.get_limits(
        session, request.app.state.settings, principal.owner_id, request.app.state.clock()
    )


@settings_router.put("/limits", response_model=LimitsRead)
async def put_limits(
    payload: LimitsPut, principal: Operator, session: SessionDep, request: Request
) -> LimitsRead:
    """Override this owner's limits; `null` goes back to `SEQUENCE_MAX_TRANSFER_CENTS` /
    `SEQUENCE_MAX_DAILY_TRANSFER_CENTS`."""
    return await sequence_service.put_limits(
        session,
        request.app.state.settings,
        principal,
        payload,
        request.app.state.clock(),
        request_id_var.get(),
    )


funding_router = APIRouter(tags=["funding"], responses=AUTH_ERRORS, route_class=AccessRoute)
Funder = Annotated[Principal, scoped(Scope.sequence)]


@funding_router.post(
    "/agents/{agent_id}/wallet/fund",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=FundingRead,
    responses={
        **NOT_FOUND,
        **UPSTREAM,
        400: {"model": Problem, "description": "A limit; a non-dollar wallet; Sequence refused"},
        403: {"model": Problem, "description": "Agent flagged, inactive, frozen; risk denied"},
        200: {"model": DryRunResult, "description": "`Dry-Run: true`: the decision"},
    },
    dependencies=[DRY_RUN, KEY_HEADERS],
)
async def fund_wallet(
    agent_id: str, payload: FundingCreate, principal: Funder, session: SessionDep, request: Request
) -> Response:
    """Fund the agent's wallet from a Sequence pod (dollar wallets at par): 202 with a
    `fund_…` id; the wallet is credited only once Sequence reports the transfer complete
    (`wallet.funded`), never twice; a failure credits nothing (`wallet.funding_failed`).
    The transfer counts against the owner's Sequence limits. `Dry-Run: true`: the checks
    (Sequence is asked about the pod), the agent's policy and the limits' reservation,
    rolled back, without the transfer; 200 with the decision, the balance once credited and
    the limits as they would stand (`DryRunResult`)."""
    if getattr(request.state, "dry_run", False):
        plan = await sequence_transfers.dry_run_funding(
            session,
            _rail(request),
            request.app.state.settings,
            call_context(request, principal),
            agent_id,
            payload,
            server_now=request.app.state.clock(),
        )
        return JSONResponse(plan.model_dump(mode="json"))
    key = idempotency_key_of(request)
    await session.commit()  # as a transfer: nothing held while Sequence answers
    funding, replayed = await sequence_transfers.fund_wallet(
        request.app.state.sessionmaker,
        _rail(request),
        request.app.state.settings,
        call_context(request, principal),
        agent_id,
        payload,
        client_key=key,
        body=await request.body(),
        server_now=request.app.state.clock(),
    )
    headers = {REPLAYED_HEADER: "true"} if replayed else None
    return JSONResponse(
        funding.model_dump(mode="json"), status_code=status.HTTP_202_ACCEPTED, headers=headers
    )


@funding_router.get("/fundings/{funding_id}", response_model=FundingRead, responses=NOT_FOUND)
async def get_funding(funding_id: str, principal: Funder, session: SessionDep) -> FundingRead:
    """A wallet funding and its state."""
    return await sequence_transfers.get_funding(session, principal, funding_id)
