"""What every yt-dlp run of twister shares: quiet logging, no cache, the bundled ffmpeg, the egress proxy,
and the per-process work done once rather than per job."""

from __future__ import annotations

import functools
from typing import Any

import yt_dlp
from yt_dlp.networking.common import make_ssl_context

from twister.config import Settings
from twister.media.binaries import ffmpeg_folder


class QuietLogger:
    """yt-dlp logger that keeps the worker's log readable; errors surface as exceptions."""

    def debug(self, msg: str) -> None: ...

    def info(self, msg: str) -> None: ...

    def warning(self, msg: str) -> None: ...

    def error(self, msg: str) -> None: ...


def base_params(settings: Settings, proxy: str) -> dict[str, Any]:
    """``proxy``: the egress proxy, so every connection passes the SSRF guard, redirects included."""
    return {
        "logger": QuietLogger(),
        "quiet": True,
        "noprogress": True,
        "cachedir": False,
        "socket_timeout": 30,
        "ffmpeg_location": ffmpeg_folder(settings.ffmpeg_path, settings.ffprobe_path),
        "proxy": proxy,
        # HLS segments are kept as MPEG-TS: the mux step reads any container, so yt-dlp's remux of
        # each stream into MP4 (a whole extra pass over the file, plus an ffprobe) is wasted work.
        "hls_use_mpegts": True,
    }


@functools.cache
def _default_extractors() -> tuple[tuple[type[Any], bool], ...]:
    """yt-dlp's default extractor list, in its order, as (class, added as an instance). yt-dlp works it
    out anew for every ``YoutubeDL`` (~0.15 s of CPU: a quadratic de-duplication of ~1,800 names);
    twister never changes ``allowed_extractors``, so once per process gives the same list."""
    probe = yt_dlp.YoutubeDL({"quiet": True, "logger": QuietLogger()}, auto_init=False)
    yt_dlp.YoutubeDL.add_default_info_extractors(probe)
    return tuple((ie, False) if isinstance(ie, type) else (type(ie), True) for ie in probe._ies.values())


@functools.cache
def _ssl_context(verify: bool, legacy_support: bool, use_certifi: bool) -> Any:
    """One TLS client context per setting for the whole process. Loading the CA bundle into a new
    context costs ~0.06 s of CPU, which yt-dlp pays in every ``YoutubeDL``; a context is safe to share
    between threads (yt-dlp already shares one between a download's connections)."""
    return make_ssl_context(verify=verify, legacy_support=legacy_support, use_certifi=use_certifi)


def _shared_contexts(handler: Any) -> Any:
    """A request handler's ``_make_sslcontext`` that hands out the process's shared contexts."""

    def make(legacy_ssl_support: bool | None = None) -> Any:
        legacy = handler.legacy_ssl_support if legacy_ssl_support is None else legacy_ssl_support
        return _ssl_context(bool(handler.verify), bool(legacy), not handler.prefer_system_certs)

    return make


class YoutubeDL(yt_dlp.YoutubeDL):  # type: ignore[misc]
    """``yt_dlp.YoutubeDL`` minus its fixed cost per instance: the default extractors come from
    ``_default_extractors`` (one that yt-dlp adds as an object gets a fresh one per instance, as
    before), and TLS contexts from ``_ssl_context`` (a handler with a client certificate keeps its own)."""

    def add_default_info_extractors(self) -> None:
        for ie, as_instance in _default_extractors():
            self.add_info_extractor(ie() if as_instance else ie)

    def build_request_director(self, handlers: Any, preferences: Any = None) -> Any:
        director = super().build_request_director(handlers, preferences)
        for handler in director.handlers.values():
            if not getattr(handler, "_client_cert", None):
                handler._make_sslcontext = _shared_contexts(handler)
        return director
