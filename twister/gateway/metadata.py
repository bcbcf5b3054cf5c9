"""``POST /metadata``: look, don't download — through a worker, the SSRF guard and the error classes of a download."""

from __future__ import annotations

from dataclasses import asdict
from typing import Any, get_type_hints

from fastapi import APIRouter
from pydantic import BaseModel, ConfigDict, Field, create_model

from twister.gateway.admission import check_source
from twister.gateway.deps import ApiKeyDep, ServicesDep
from twister.gateway.errors import ApiError
from twister.gateway.inspect import INSPECT_RETRY_AFTER_S, SourceProblem, inspect_url
from twister.gateway.schemas import ERROR_RESPONSES
from twister.models import UrlInfo

router = APIRouter()


class MetadataRequest(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)

    url: str = Field(min_length=1, max_length=4096)


Metadata = create_model(  # type: ignore[call-overload]
    "Metadata",
    __doc__="What the downloader sees at a URL (the contract's fields; upload_date is YYYYMMDD).",
    **{name: (hint, None) for name, hint in get_type_hints(UrlInfo).items() if name != "entries"},
    total_videos=(int | None, Field(default=None, description="(beyond) For a playlist: how many videos it lists")),
)


@router.post("/metadata", response_model=Metadata, responses=ERROR_RESPONSES, response_model_exclude_none=True)
async def metadata(body: MetadataRequest, svc: ServicesDep, key: ApiKeyDep) -> dict[str, Any]:
    await check_source(svc, body.url, "url")
    try:
        info = await inspect_url(svc, body.url)
    except SourceProblem as exc:
        if exc.content:
            raise ApiError(400, str(exc)) from None
        raise ApiError(503, str(exc), headers={"Retry-After": str(INSPECT_RETRY_AFTER_S)}) from None
    found: dict[str, Any] = asdict(info)
    entries = found.pop("entries")
    return {**found, "total_videos": len(entries) if entries is not None else None}
