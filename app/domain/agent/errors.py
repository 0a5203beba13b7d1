from app.errors import Forbidden, NotFound


class AgentNotFound(NotFound):
    code = "agent_not_found"


class OwnerMismatch(Forbidden):
    code = "owner_mismatch"
