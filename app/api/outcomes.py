"""Rendering of money movements that may be refused: success as the API reference's
shape, refusal as the same shape plus problem-details members (and recorded)."""

from datetime import datetime
from typing import Any

from fastapi import Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel

from app.api.idempotency import Idempotency
from app.api.problems import PROBLEM_JSON, problem_members
from app.api.request_context import request_id_var
from app.config import Settings
from app.domain.apikey.schemas import Principal
from app.domain.payment import dry_run
from app.domain.payment.errors import PaymentRefused
from app.domain.payment.service import CallContext, PolicyTrace
from app.domain.test_clock import service as test_clock_service


def owner_now(request: Request, principal: Principal) -> datetime:
    """The caller's owner's now: the server's clock plus the owner's sandbox test clock
    offset (read with the key; ``app.domain.test_clock``)."""
    now: datetime = request.app.state.clock()
    return test_clock_service.owner_now(now, principal.clock_offset_seconds)


def call_context(request: Request, principal: Principal) -> CallContext:
    """The use case's context; for a dry run, with the trace its steps note their
    decisions in (kept on the request for ``respond``)."""
    settings: Settings = request.app.state.settings
    dry_run = getattr(request.state, "dry_run", False)
    context = CallContext(
        principal=principal,
        request_id=request_id_var.get(),
        now=owner_now(request, principal),
        tz=settings.limits_zone,
        risk_rules=request.app.state.risk_rules,
        trace=PolicyTrace() if dry_run else None,
    )
    if dry_run:
        request.state.dry_run_context = context
    return context


async def respond(
    idempotency: Idempotency,
    success: BaseModel | None,
    refusal: PaymentRefused | None,
    *,
    refused_body: dict[str, Any],
    status_code: int = 200,
) -> JSONResponse:
    """The answer to a call that moves money: ``success`` (with ``status_code``), or the
    refusal's problem details beside ``refused_body``; for a dry run, 200 with the
    decision (``app.domain.payment.dry_run``), the same call having run."""
    context: CallContext | None = getattr(idempotency.request.state, "dry_run_context", None)
    if context is not None:
        result = await dry_run.report(idempotency.session, context, refusal, status_code)
        return JSONResponse(result.model_dump(mode="json"))
    if refusal is None:
        assert success is not None
        return await idempotency.respond(success, status_code=status_code)
    body = {**refused_body, **problem_members(refusal)}
    return await idempotency.respond(body, status_code=refusal.status_code, media_type=PROBLEM_JSON)
