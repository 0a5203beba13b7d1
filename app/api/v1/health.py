from typing import Literal

from fastapi import APIRouter
from pydantic import BaseModel
from sqlalchemy import text

from app.api.deps import PUBLIC, AccessRoute, SessionDep
from app.errors import ServiceUnavailable

router = APIRouter(
    prefix="/health", tags=["health"], dependencies=[PUBLIC], route_class=AccessRoute
)


class Health(BaseModel):
    status: Literal["ok"]


class Readiness(BaseModel):
    status: Literal["ready"]
    database: Literal["ok"]


@router.get("", response_model=Health, summary="Liveness")
async def liveness() -> Health:
    """The process is up. Needs no API key and touches no database."""
    return Health(status="ok")


@router.get(
    "/ready",
    response_model=Readiness,
    summary="Readiness",
    responses={503: {"description": "The database does not answer"}},
)
async def readiness(session: SessionDep) -> Readiness:
    """The database answers a query."""
    try:
        await session.execute(text("SELECT 1"))
    except Exception as error:
        raise ServiceUnavailable("database is not reachable") from error
    return Readiness(status="ready", database="ok")
