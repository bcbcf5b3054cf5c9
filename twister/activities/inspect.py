"""Inspect step: what the downloader sees at a URL (a video's metadata or a playlist's entries),
without downloading any media. Runs on the shared queue: it needs no job slot and no work dir."""

from __future__ import annotations

import subprocess
from typing import Any

from temporalio import activity

from twister.config import Settings
from twister.media.download_errors import classify_download_error
from twister.media.probe import probe
from twister.media.ytdlp import YoutubeDL, base_params
from twister.models import ActivityName, PlaylistEntry, UrlInfo

_METADATA_FIELDS = ("title", "duration", "width", "height", "uploader", "thumbnail", "description", "upload_date")
_COUNT_FIELDS = ("view_count", "like_count")


def _int(value: Any) -> int | None:
    return int(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def url_info(info: dict[str, Any]) -> UrlInfo:
    """The contract's metadata fields of an extracted video, or the entries of a playlist."""
    found = UrlInfo(extractor=info.get("extractor_key") or info.get("extractor"))
    for name in _METADATA_FIELDS:
        value = info.get(name)
        if value is not None:
            setattr(found, name, value)
    for name in _COUNT_FIELDS:
        setattr(found, name, _int(info.get(name)))
    found.filesize_approx = _int(info.get("filesize") or info.get("filesize_approx"))
    if info.get("_type") == "playlist":
        listed = [entry for entry in info.get("entries") or [] if entry]
        entries = [PlaylistEntry(str(entry["url"]), entry.get("title")) for entry in listed if entry.get("url")]
        # a page whose videos have no address of their own is downloaded as one video
        if entries and len(entries) == len(listed):
            found.entries = entries
    return found


class InspectActivities:
    def __init__(self, settings: Settings, egress_proxy_url: str) -> None:
        self._settings = settings
        self._proxy = egress_proxy_url

    @activity.defn(name=ActivityName.INSPECT_URL)
    def inspect_url(self, url: str) -> UrlInfo:
        """At most ``max_playlist_entries`` + 1 entries are listed: enough to tell a playlist is too long."""
        params = base_params(self._settings, self._proxy) | {
            "extract_flat": "in_playlist",
            "playlistend": self._settings.max_playlist_entries + 1,
            "retries": 1,
        }
        try:
            with YoutubeDL(params) as ydl:
                info = ydl.extract_info(url, download=False)
        except Exception as exc:  # every downloader failure is classified, none escapes raw
            raise classify_download_error(exc, activity.info().attempt) from None
        found = url_info(info or {})
        media_url = _media_url(info or {})
        if found.entries is None and media_url and not (found.width and found.duration):
            self._probe_into(found, media_url)
        return found

    def _probe_into(self, found: UrlInfo, media_url: str) -> None:
        """A plain file or stream tells its size and length only to a reader: ffprobe reads its header."""
        try:
            media = probe(self._settings.ffprobe_path, media_url, self._proxy)
        except (subprocess.SubprocessError, OSError, ValueError):
            return  # what the extractor said stands
        found.width, found.height = found.width or media.width, found.height or media.height
        found.duration = found.duration or media.duration


def _media_url(info: dict[str, Any]) -> str | None:
    """The chosen video format's address (the first of a video+audio pair)."""
    formats = info.get("requested_formats") or [info]
    url = formats[0].get("url")
    return str(url) if url and str(url).startswith(("http://", "https://")) else None
