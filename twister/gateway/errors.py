"""Every error leaves the gateway as ``{"error": "..."}`` with the contract's status code."""

from __future__ import annotations

import asyncio
import logging

import asyncpg
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException
from temporalio.service import RPCError

log = logging.getLogger(__name__)

DATABASE_ERRORS: tuple[type[Exception], ...] = (
    OSError,
    asyncio.TimeoutError,
    asyncpg.PostgresConnectionError,
    asyncpg.InterfaceError,
    asyncpg.CannotConnectNowError,
)


class ApiError(Exception):
    """``details``: more keys of the error body beside ``error`` (e.g. a quota's limit and use)."""

    def __init__(
        self,
        status_code: int,
        message: str,
        headers: dict[str, str] | None = None,
        details: dict[str, object] | None = None,
    ) -> None:
        super().__init__(message)
        self.status_code = status_code
        self.message = message
        self.headers = headers
        self.details = details or {}


def error_response(
    status_code: int, message: str, headers: dict[str, str] | None = None, details: dict[str, object] | None = None
) -> JSONResponse:
    return JSONResponse({"error": message, **(details or {})}, status_code=status_code, headers=headers)


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(ApiError)
    async def api_error(_: Request, exc: ApiError) -> JSONResponse:
        return error_response(exc.status_code, exc.message, exc.headers, exc.details)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(_: Request, exc: StarletteHTTPException) -> JSONResponse:
        message = exc.detail if isinstance(exc.detail, str) else "Request failed"
        message = "Not found" if exc.status_code == 404 else message
        headers = dict(exc.headers) if exc.headers else None  # e.g. Allow on a 405
        return error_response(exc.status_code, message, headers)

    @app.exception_handler(RequestValidationError)
    async def invalid_parameter(_: Request, exc: RequestValidationError) -> JSONResponse:
        """A query or path parameter out of range is a 400 naming it; one of the wrong type a 422."""
        error = exc.errors()[0]
        name = str(error["loc"][-1]) if error.get("loc") else "request"
        wrong_type = error["type"].endswith(("_type", "_parsing"))
        return error_response(422 if wrong_type else 400, f"Invalid value for '{name}': {error['msg']}")

    @app.exception_handler(RPCError)
    async def temporal_error(_: Request, exc: RPCError) -> JSONResponse:
        log.warning("temporal call failed: %s", exc.status)
        return error_response(503, "The workflow service (Temporal) is unreachable; try again shortly")

    for error_class in DATABASE_ERRORS:

        @app.exception_handler(error_class)
        async def database_error(_: Request, exc: Exception) -> JSONResponse:
            log.warning("database call failed: %s", type(exc).__name__)
            return error_response(503, "The database is unreachable; try again shortly")

    @app.exception_handler(Exception)
    async def unexpected(_: Request, exc: Exception) -> JSONResponse:
        log.exception("unexpected error")
        return error_response(500, "Internal server error")
