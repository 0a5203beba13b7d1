"""Rendering of money movements that may be refused: success as the API reference's
shape, refusal as the same shape plus problem-details members (and recorded)."""

from typing import Any

from fastapi import Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel

from app.api.idempotency import Idempotency
from app.api.problems import PROBLEM_JSON, problem_members
from app.api.request_context import request_id_var
from app.config import Settings
from app.domain.apikey.schemas import Principal
from app.domain.payment.errors import PaymentRefused
from app.domain.payment.service import CallContext


def call_context(request: Request, principal: Principal) -> CallContext:
    settings: Settings = request.app.state.settings
    return CallContext(
        principal=principal,
        request_id=request_id_var.get(),
        now=request.app.state.clock(),
        tz=settings.limits_zone,
        risk_rules=request.app.state.risk_rules,
    )


async def respond(
    idempotency: Idempotency,
    success: BaseModel | None,
    refusal: PaymentRefused | None,
    *,
    refused_body: dict[str, Any],
    status_code: int = 200,
) -> JSONResponse:
    if refusal is None:
        assert success is not None
        return await idempotency.respond(success, status_code=status_code)
    body = {**refused_body, **problem_members(refusal)}
    return await idempotency.respond(body, status_code=refusal.status_code, media_type=PROBLEM_JSON)
