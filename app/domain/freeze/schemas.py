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
    frozen: bool = Field(description="The state after the call.")
    changed: bool = Field(description="False when it already was in that state.")
    agent_ids: list[str] = Field(description="Agents whose own flag changed by this call.")
    holds_released: list[str] = Field(
        default_factory=list, description="Holds voided (`release_holds`)."
    )
