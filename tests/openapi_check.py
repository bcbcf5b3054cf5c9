"""Every gateway response the suite receives is checked against the gateway's own OpenAPI document:
a response the document does not describe (status, content type, body) fails the test that got it."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import httpx
import pytest
import schemathesis
from schemathesis.core.failures import FailureGroup

from twister.config import Settings
from twister.gateway.app import create_app

STREAMED = "text/event-stream"  # read by the test as it comes, not checked here


@contextmanager
def responses_checked_against_openapi(settings: Settings) -> Iterator[list[str]]:
    """While open, every httpx response to a documented operation is validated; yields the labels seen."""
    schema = schemathesis.openapi.from_dict(create_app(settings).openapi())
    seen: list[str] = []
    send = httpx.Client.send

    def checked_send(client: httpx.Client, request: httpx.Request, **kwargs: Any) -> httpx.Response:
        response = send(client, request, **kwargs)
        operation = schema.find_operation_by_path(request.method, request.url.path)
        if operation is None or response.headers.get("content-type", "").startswith(STREAMED):
            return response
        response.read()
        try:
            operation.validate_response(response)
        except FailureGroup as failures:
            raise AssertionError(
                f"{request.method} {request.url.path} answered {response.status_code} {response.text[:300]!r}, "
                f"which the OpenAPI document does not describe: {failures}"
            ) from None
        seen.append(operation.label)
        return response

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(httpx.Client, "send", checked_send)
        yield seen
