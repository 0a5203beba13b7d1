from app.errors import Forbidden


class ReleaseHoldsNotAllowed(Forbidden):
    """``release_holds`` voids holds, which only owner keys may do (an agent could
    otherwise drop a merchant's guarantee by freezing itself)."""

    code = "agent_key_not_allowed"
