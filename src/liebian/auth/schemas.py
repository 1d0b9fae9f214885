"""Shapes at the edges of the auth API."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from liebian.schemas import UtcDateTime, encode, utc_iso  # noqa: F401 (re-exported)


class LoginRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    username: str = Field(min_length=1, max_length=64)
    password: str = Field(min_length=1, max_length=1024)


class LoginResponse(BaseModel):
    username: str
    role: str
    csrf_token: str
    must_change_password: bool


class UserCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    username: str = Field(min_length=1, max_length=64)
    role: Literal["admin", "operator", "analyst", "reviewer", "auditor", "viewer"]
    password: str | None = Field(
        default=None, min_length=10, max_length=1024, description="omit for a one-time password"
    )


class UserUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    role: Literal["admin", "operator", "analyst", "reviewer", "auditor", "viewer"] | None = None
    active: bool | None = None


class UserOut(BaseModel):
    username: str
    role: str
    active: bool
    must_change_password: bool
    created_at: UtcDateTime | None = None
    last_login_at: UtcDateTime | None = None


class UserCreated(UserOut):
    one_time_password: str | None = None


class KeyCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str = Field(default="", max_length=128)
    kind: Literal["user", "service", "public"] = "service"
    username: str | None = Field(default=None, max_length=64)
    role: Literal["admin", "operator", "analyst", "reviewer", "auditor", "viewer"] | None = None
    scopes: list[str] = Field(default_factory=list, max_length=32)
    expires_days: int | None = Field(default=90, ge=1, le=3650)


class KeyOut(BaseModel):
    key_id: str
    name: str
    kind: str
    owner: str | None = None
    role: str | None = None
    scopes: list[str]
    created_by: str
    created_at: UtcDateTime | None = None
    expires_at: UtcDateTime | None = None
    revoked_at: UtcDateTime | None = None
    last_used_at: UtcDateTime | None = None


class KeyCreated(KeyOut):
    key: str = Field(description="the API key; shown this once, stored only as a hash")


class Me(BaseModel):
    name: str
    kind: str
    role: str | None
    permissions: list[str]


class AuditOut(BaseModel):
    seq: int
    ts: UtcDateTime
    actor: str
    action: str
    target: str
    detail: dict
    ip: str
    prev_hash: str
    hash: str


class AuditVerify(BaseModel):
    ok: bool
    entries: int
    bad_seq: int | None = None
    reason: str = ""
    head: str | None = None


class RoutePermission(BaseModel):
    method: str
    path: str
    permission: str


class PolicyTable(BaseModel):
    roles: dict[str, list[str]]
    public_key_scopes: list[str]
    routes: list[RoutePermission]
