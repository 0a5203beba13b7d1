"""The journal: a wallet's postings with running balances, and one entry's postings."""

from typing import Annotated

from fastapi import APIRouter, Query

from app.api.deps import AccessRoute, SessionDep, scoped
from app.api.problems import AUTH_ERRORS, Problem
from app.domain.apikey.schemas import Principal, Scope
from app.domain.journal import service as journal_service
from app.domain.journal.schemas import JournalEntryRead, WalletAccount, WalletEntry
from app.kit.pagination import DEFAULT_LIMIT, MAX_LIMIT
from app.kit.schemas import MAX_ID_LENGTH, STORABLE_TEXT_PATTERN

router = APIRouter(tags=["journal"], responses=AUTH_ERRORS, route_class=AccessRoute)
#: The journal is a read of the wallet: who may read the wallet reads its journal (agent
#: keys: their own agent's).
WalletReader = Annotated[Principal, scoped(Scope.wallet_read, agent_keys=True)]


@router.get(
    "/agents/{agent_id}/wallet/entries",
    response_model=list[WalletEntry],
    summary="List a wallet's journal",
    responses={
        404: {
            "model": Problem,
            "description": "`agent_not_found` (or another owner's, or another agent's for an "
            "agent key); `entry_not_found` with `param` `starting_after` for a cursor that "
            "is not an entry of this listing",
        }
    },
)
async def list_wallet_entries(
    agent_id: str,
    principal: WalletReader,
    session: SessionDep,
    limit: Annotated[
        int, Query(ge=1, le=MAX_LIMIT, description="Max postings to return")
    ] = DEFAULT_LIMIT,
    starting_after: Annotated[
        str | None,
        Query(
            max_length=MAX_ID_LENGTH,
            pattern=STORABLE_TEXT_PATTERN,
            description="Cursor: the `entry_id` of a posting of this listing; returns the "
            "postings before it (older).",
        ),
    ] = None,
    account: Annotated[
        WalletAccount,
        Query(
            description="`available` (what the agent can spend: `balance`) or `held` (what "
            "pending holds reserve: `held_balance`)."
        ),
    ] = WalletAccount.available,
) -> list[WalletEntry]:
    """The postings of one of the wallet's two ledger accounts, newest first: by default
    the `available` account, whose newest `balance_after` is the wallet's `balance`;
    with `account=held`, the account pending holds reserve, whose newest `balance_after`
    is the wallet's `held_balance`. A hold moves money from the first to the second, a
    capture or void moves it out of the second.

    Each posting carries the entry's kind, its `amount` (signed: negative is money out),
    the account's balance after it (`balance_after`: the sum of the account's postings
    up to and including it, in the order they were posted, so it is the same on every
    page), the entry's other postings (`counterparties`, each with its account's owner:
    merchant, agent, fee revenue, owner deposit or rail) and what the entry records
    (`reference`: payment, payment request, hold, capture, void, refund, funding with
    Sequence's transfer id, initial balance). Page with `starting_after` set to the last
    `entry_id` received."""
    return await journal_service.list_wallet_entries(
        session,
        principal,
        agent_id,
        account=account,
        limit=limit,
        starting_after=starting_after,
    )


@router.get(
    "/journal/entries/{entry_id}",
    response_model=JournalEntryRead,
    summary="Get a journal entry",
    responses={
        404: {
            "model": Problem,
            "description": "`entry_not_found`: no such entry, or it posts to none of the "
            "caller's accounts (the same answer)",
        }
    },
)
async def get_journal_entry(
    entry_id: str, principal: WalletReader, session: SessionDep
) -> JournalEntryRead:
    """One journal entry with every posting (they sum to zero), each with its account's
    kind and owner. Only an entry that posts to one of the caller's accounts is found: an
    owner key's, any account of its owner (agent wallets, merchant wallets); an agent
    key's, its agent's wallet."""
    return await journal_service.get_entry(session, principal, entry_id)
