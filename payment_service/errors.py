"""Stripe-shaped error answers: ``{"error": {"type", "code", "param", "message"}}``."""

from __future__ import annotations

from fastapi.responses import JSONResponse

from payment_service.tracing import scrub


class ApiError(Exception):
    """An answer that refuses the request; raised anywhere, rendered once by the app."""

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        param: str | None = None,
        type_: str = "invalid_request_error",
        headers: dict[str, str] | None = None,
    ) -> None:
        # a message or param may quote what the client sent (a path, a knob's value, a key):
        # never a card number or the token
        message, param = scrub(message), param and scrub(param)
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.param = param
        self.type = type_
        self.headers = headers or {}

    def body(self) -> dict:
        return {
            "error": {
                "type": self.type,
                "code": self.code,
                "param": self.param,
                "message": self.message,
            }
        }

    def response(self) -> JSONResponse:
        return JSONResponse(self.body(), status_code=self.status, headers=self.headers)
