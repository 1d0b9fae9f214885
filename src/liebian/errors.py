"""The error shape domains share at the edges: a stable code, a message, an HTTP status."""

from __future__ import annotations


class DomainError(Exception):
    default_status = 400

    def __init__(self, code: str, message: str, status: int | None = None):
        super().__init__(message)
        self.code = code
        self.message = message
        self.status = status or self.default_status

    def as_dict(self) -> dict:
        body = {"detail": self.message, "code": self.code}
        if self.status == 422:  # the shape of every liebian 422: which field, and why
            field, _, reason = self.message.partition(": ")
            body["errors"] = [{"field": field if reason else "", "reason": reason or self.message}]
        return body
