"""Shapes of the WeCom endpoints: contact-way (联系我) management and the parsed callback message."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, model_validator

from liebian.campaigns.schemas import Participant
from liebian.schemas import UtcDateTime
from liebian.shapes import Open

STATE_PATTERN = r"^[A-Za-z0-9_-]{1,30}$"


class ContactWayCreate(BaseModel):
    """A 联系我 code whose state stands for an inviter's invite (campaign + inviter) or for a channel."""

    model_config = ConfigDict(extra="forbid")
    campaign_id: str | None = Field(None, description="the campaign; required with an inviter")
    inviter: Participant | None = Field(None, description="the participant who shares this code")
    channel: str = Field("wecom", max_length=64, description="渠道: the campaign channel of the code")
    region: str | None = Field(None, max_length=64, description="region of the code (campaign scoping)")
    store: str | None = Field(None, max_length=64, description="store of the code (campaign scoping)")
    state: str | None = Field(None, pattern=STATE_PATTERN, description="≤ 30 characters; generated if absent")
    users: list[str] = Field(default_factory=list, description="staff userids (跟进成员) the code adds")
    remark: str = Field("", max_length=30)
    skip_verify: bool = True
    create_in_wecom: bool = Field(
        True, description="create the code in WeCom (false: only store the mapping)"
    )

    @model_validator(mode="after")
    def _check(self) -> ContactWayCreate:
        if self.inviter is not None and not self.campaign_id:
            raise ValueError("campaign_id is required when an inviter is given")
        if self.create_in_wecom and not self.users:
            raise ValueError("users: at least one staff userid is needed to create the code in WeCom")
        return self


class ContactWayUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    users: list[str] | None = None
    remark: str | None = Field(None, max_length=30)
    skip_verify: bool | None = None


@dataclass
class Message:
    """A decrypted, parsed callback message."""

    key: str  # sha256 of the decrypted XML: the idempotency key of the event
    event: str
    change_type: str
    created_at: datetime
    fields: dict[str, str]
    members: list[str] = field(default_factory=list)  # MemChangeList of change_external_chat
    unionid: str | None = None  # filled from externalcontact/get when the client is configured
    nonce: str = ""
    timestamp: int = 0


# ------------------------------------------------------------------ responses


class ContactWayOut(Open):
    state: str
    kind: str
    campaign_id: str | None = None
    invite_code: str | None = None
    inviter_person_id: int | None = None
    channel: str | None = None
    region: str | None = None
    store: str | None = None
    config_id: str | None = None
    qr_code: str | None = None
    users: list[Any]
    remark: str | None = None
    created_at: UtcDateTime | None = None
    deleted_at: UtcDateTime | None = None


class FollowOut(Open):
    external_userid: str
    wecom_staff: str | None = None
    person_id: int | None = None
    state: str | None = None
    campaign_id: str | None = None
    referral_id: int | None = None
    welcome_code_received: bool | None = None
    added_at: UtcDateTime | None = None
    deleted_at: UtcDateTime | None = None
    deleted_by: str | None = None


class GroupMemberOut(Open):
    chat_id: str
    member_id: str
    member_kind: Any = None
    joined_at: UtcDateTime | None = None
    left_at: UtcDateTime | None = None
    in_group: bool


class CallbackOut(Open):
    id: int
    event: str | None = None
    change_type: str | None = None
    external_userid: str | None = None
    wecom_staff: str | None = None
    chat_id: str | None = None
    state: str | None = None
    outcome: str | None = None
    detail: Any = None
    created_at: UtcDateTime | None = None
    received_at: UtcDateTime | None = None
