from fastapi import APIRouter

from app.api.v1 import agents, audit, catalog, health, keys, merchants, payments

api_router = APIRouter(prefix="/api/v1")
api_router.include_router(health.router)
api_router.include_router(keys.router)
api_router.include_router(agents.router)
api_router.include_router(merchants.router)
api_router.include_router(catalog.router)
api_router.include_router(payments.router)
api_router.include_router(audit.router)
