from fastapi import APIRouter

from app.api.v1 import (
    agents,
    audit,
    catalog,
    freeze,
    health,
    holds,
    journal,
    keys,
    merchants,
    payment_requests,
    payments,
    risk,
    sequence,
    test_clock,
    webhooks,
)

api_router = APIRouter(prefix="/api/v1")
api_router.include_router(health.router)
api_router.include_router(keys.router)
api_router.include_router(agents.router)
api_router.include_router(journal.router)
api_router.include_router(freeze.router)
api_router.include_router(merchants.router)
api_router.include_router(catalog.router)
# Before payments: /payments/{tx_id} would otherwise match /payments/request and /holds.
api_router.include_router(payment_requests.router)
api_router.include_router(holds.router)
api_router.include_router(payments.router)
api_router.include_router(risk.router)
api_router.include_router(sequence.router)
api_router.include_router(sequence.settings_router)
api_router.include_router(sequence.funding_router)
api_router.include_router(audit.router)
api_router.include_router(webhooks.router)
api_router.include_router(test_clock.router)
