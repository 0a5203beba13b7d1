"""The API key's lookup claims the request's idempotency key in the same round trip, but
only for a key that will be accepted: a wrong secret, a revoked or expired key claims
nothing (another request with that key is not made to wait), and the claim is the same
lock ``begin`` takes on its own when the key's row came from the cache."""

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.config import Mode
from app.domain.apikey import repository as apikey_repository
from app.domain.apikey import service as apikey_service
from app.domain.idempotency import repository as idempotency_repository
from app.domain.idempotency.service import KeyClaim
from tests.api.helpers import MakeKey

CLAIM = KeyClaim("POST", "/api/v1/payments", "claim-test")


def _hash(secret: str) -> str:
    return apikey_service._hash(secret.rsplit("_", 1)[1])


async def _others_claim(sessionmaker: async_sessionmaker[AsyncSession], owner_id: str) -> bool:
    """Whether another transaction gets the claim now."""
    async with sessionmaker() as other:
        row = await idempotency_repository.get_or_lock(
            other, owner_id, CLAIM.method, CLAIM.path, CLAIM.key
        )
        await other.rollback()
    return bool(row.claim_locked)


async def test_a_live_key_claims_and_holds_the_lock_until_its_transaction_ends(
    sessionmaker: async_sessionmaker[AsyncSession], make_key: MakeKey
) -> None:
    key = await make_key()
    async with sessionmaker() as session:
        row = await apikey_repository.get_key_claiming(
            session, key.key_id, _hash(key.secret), CLAIM.params()
        )
        assert row is not None
        assert row.claim_locked is True
        assert row.claim_fingerprint is None
        # The lock is the one ``begin`` takes alone: the other transaction is refused.
        assert await _others_claim(sessionmaker, key.owner_id) is False
        await session.rollback()
    assert await _others_claim(sessionmaker, key.owner_id) is True


async def test_a_refused_key_claims_nothing(
    sessionmaker: async_sessionmaker[AsyncSession], make_key: MakeKey
) -> None:
    wrong = await make_key()
    revoked = await make_key()
    expired = await make_key()
    async with sessionmaker() as session:
        await apikey_service.revoke_key(session, revoked.key_id, owner_id=revoked.owner_id)
        await session.execute(
            text("UPDATE api_keys SET expires_at = now() - interval '1 second' WHERE id = :id"),
            {"id": expired.key_id},
        )
        await session.commit()
    cases = [
        (wrong, "0" * 64),
        (revoked, _hash(revoked.secret)),
        (expired, _hash(expired.secret)),
    ]
    for key, secret_hash in cases:
        async with sessionmaker() as session:
            row = await apikey_repository.get_key_claiming(
                session, key.key_id, secret_hash, CLAIM.params()
            )
            assert row is not None
            assert row.id == key.key_id
            assert row.claim_locked is None
            assert row.claim_fingerprint is None
            # Nothing held: another request with the key is not made to wait.
            assert await _others_claim(sessionmaker, key.owner_id) is True
            await session.rollback()


async def test_a_key_of_the_other_mode_claims_nothing(
    sessionmaker: async_sessionmaker[AsyncSession], make_key: MakeKey
) -> None:
    live = await make_key(mode=Mode.live)
    async with sessionmaker() as session:
        row = await apikey_repository.get_key_claiming(
            session, live.key_id, _hash(live.secret), CLAIM.params()
        )
        assert row is not None
        assert row.claim_locked is None
        await session.rollback()
