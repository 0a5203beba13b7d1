from typing import Literal

from pydantic import BaseModel, Field, StrictBool

from app.kit.schemas import RequestSchema


class FreezeCreate(RequestSchema):
    release_holds: StrictBool = Field(
        default=False,
        description="Also void the pending holds of the frozen agents (their reserved "
        "money returns to the wallets).",
    )


class FreezeRead(BaseModel):
    """What a freeze or unfreeze changed."""

    scope: Literal["agent", "owner"]
    #: The agent of an agent freeze; null for the owner-wide one.
    agent_id: str | None = Field(examples=["agent_6f1c2b3a4d5e6f70"])
    frozen: bool = Field(
        description="After the call: for an agent, whether it moves no money (frozen on its "
        "own or by the owner's freeze, see `frozen_by`); for the owner, whether the "
        "owner-wide freeze holds."
    )
    frozen_by: list[Literal["agent", "owner"]] = Field(
        default_factory=list,
        description="What holds it frozen after the call: `agent` (its own freeze), "
        "`owner` (the owner-wide one), both, or none.",
    )
    changed: bool = Field(description="False when it already was in that state.")
    agent_ids: list[str] = Field(
        description="Agents whose state (frozen or not) this call changed: each got an "
        "`agent.frozen` or `agent.unfrozen` event."
    )
    holds_released: list[str] = Field(
        default_factory=list, description="Holds voided (`release_holds`)."
    )
