from typing import Annotated, Any

from fastapi import APIRouter, Query, Request, Response, status

from app.api.deps import AccessRoute, SessionDep, SettingsDep, scoped
from app.api.problems import AUTH_ERRORS, NOT_FOUND, Problem
from app.api.request_context import request_id_var
from app.config import Mode
from app.domain.apikey.schemas import Principal, Scope
from app.domain.webhook import service as webhook_service
from app.domain.webhook.schemas import (
    EVENT_TYPES,
    DeliveryAttemptRead,
    EventType,
    TestDelivery,
    WebhookCreate,
    WebhookCreated,
    WebhookRead,
    WebhookUpdate,
)
from app.kit.encryption import SecretBox, SecretsUnavailable

router = APIRouter(
    prefix="/webhooks", tags=["webhooks"], responses=AUTH_ERRORS, route_class=AccessRoute
)
Owner = Annotated[Principal, scoped(Scope.webhooks)]
UNAVAILABLE: dict[int | str, dict[str, Any]] = {
    503: {"model": Problem, "description": "PURSER_SECRET_KEY is not configured"}
}


#: RFC 9111 §5.2.2.5: a response that carries a signing secret is stored by no cache.
NO_STORE = "no-store"


def _box(request: Request) -> SecretBox:
    box: SecretBox | None = request.app.state.secret_box
    if box is None:
        raise SecretsUnavailable("webhook secrets need PURSER_SECRET_KEY to be configured")
    return box


@router.get("/events/types", response_model=list[EventType])
async def list_event_types(principal: Owner) -> list[EventType]:
    """Every event type a subscription can receive."""
    return [EventType(type=name, description=text) for name, text in EVENT_TYPES.items()]


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    response_model=WebhookCreated,
    responses=UNAVAILABLE,
)
async def create_webhook(
    payload: WebhookCreate,
    principal: Owner,
    session: SessionDep,
    settings: SettingsDep,
    request: Request,
    response: Response,
) -> WebhookCreated:
    """Subscribe a URL to event types. The `secret` (`whsec_…`) is returned only here
    (`Cache-Control: no-store`). The URL is checked completely: an RFC 3986 URI, https
    (http too in the sandbox), no credentials, a port from 1 to 65535, and in live mode a
    host whose every address is public; anything else is `422 invalid_webhook_url`."""
    created = await webhook_service.create(
        session,
        principal.owner_id,
        payload,
        _box(request),
        sandbox=settings.mode is Mode.sandbox,
        key_id=principal.key_id,
        request_id=request_id_var.get(),
    )
    response.headers["Cache-Control"] = NO_STORE
    return created


@router.get("", response_model=list[WebhookRead])
async def list_webhooks(principal: Owner, session: SessionDep) -> list[WebhookRead]:
    return await webhook_service.list_endpoints(session, principal.owner_id)


@router.get("/{subscription_id}", response_model=WebhookRead, responses=NOT_FOUND)
async def get_webhook(subscription_id: str, principal: Owner, session: SessionDep) -> WebhookRead:
    return await webhook_service.get(session, principal.owner_id, subscription_id)


@router.patch("/{subscription_id}", response_model=WebhookRead, responses=NOT_FOUND)
async def update_webhook(
    subscription_id: str,
    payload: WebhookUpdate,
    principal: Owner,
    session: SessionDep,
    settings: SettingsDep,
) -> WebhookRead:
    """Change the URL, event types, description, or re-enable (`is_active: true`)."""
    return await webhook_service.update(
        session,
        principal.owner_id,
        subscription_id,
        payload,
        sandbox=settings.mode is Mode.sandbox,
        key_id=principal.key_id,
        request_id=request_id_var.get(),
    )


@router.delete("/{subscription_id}", status_code=status.HTTP_204_NO_CONTENT, responses=NOT_FOUND)
async def delete_webhook(subscription_id: str, principal: Owner, session: SessionDep) -> Response:
    await webhook_service.delete(
        session,
        principal.owner_id,
        subscription_id,
        key_id=principal.key_id,
        request_id=request_id_var.get(),
    )
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.post(
    "/{subscription_id}/test",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=TestDelivery,
    responses=NOT_FOUND,
)
async def test_webhook(
    subscription_id: str, principal: Owner, session: SessionDep, request: Request
) -> TestDelivery:
    """Queue a `webhook.test` event for this subscription only."""
    return await webhook_service.send_test(
        session, principal.owner_id, subscription_id, request.app.state.clock()
    )


@router.post(
    "/{subscription_id}/rotate-secret",
    response_model=WebhookCreated,
    responses={**NOT_FOUND, **UNAVAILABLE},
)
async def rotate_webhook_secret(
    subscription_id: str,
    principal: Owner,
    session: SessionDep,
    request: Request,
    response: Response,
) -> WebhookCreated:
    """A new secret (returned once, `Cache-Control: no-store`); the old one keeps signing
    beside it for 24 hours."""
    rotated = await webhook_service.rotate_secret(
        session,
        principal.owner_id,
        subscription_id,
        _box(request),
        request.app.state.clock(),
        key_id=principal.key_id,
        request_id=request_id_var.get(),
    )
    response.headers["Cache-Control"] = NO_STORE
    return rotated


@router.get(
    "/{subscription_id}/deliveries", response_model=list[DeliveryAttemptRead], responses=NOT_FOUND
)
async def list_deliveries(
    subscription_id: str,
    principal: Owner,
    session: SessionDep,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
) -> list[DeliveryAttemptRead]:
    """Every delivery attempt, newest first: status code, latency, error, next retry."""
    return await webhook_service.list_attempts(session, principal.owner_id, subscription_id, limit)


@router.post(
    "/{subscription_id}/deliveries/{event_id}/replay",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=TestDelivery,
    responses=NOT_FOUND,
)
async def replay_delivery(
    subscription_id: str, event_id: str, principal: Owner, session: SessionDep, request: Request
) -> TestDelivery:
    """Deliver an event again, dead-lettered ones included, with a fresh retry schedule."""
    return await webhook_service.replay(
        session, principal.owner_id, subscription_id, event_id, request.app.state.clock()
    )
