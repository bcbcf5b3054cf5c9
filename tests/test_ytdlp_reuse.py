"""twister's YoutubeDL skips yt-dlp's per-instance fixed costs without changing what it does."""

from __future__ import annotations

import yt_dlp

from twister.media.ytdlp import QuietLogger, YoutubeDL


def test_same_extractors_in_the_same_order_as_yt_dlp() -> None:
    params = {"quiet": True, "logger": QuietLogger()}
    theirs, ours = yt_dlp.YoutubeDL(params), YoutubeDL(params)
    assert list(ours._ies) == list(theirs._ies)
    assert [type(ie) for ie in ours._ies_instances.values()] == [type(ie) for ie in theirs._ies_instances.values()]
    # objects are never shared between instances: each is bound to its own downloader
    again = YoutubeDL(params)
    assert all(again._ies_instances[k] is not v for k, v in ours._ies_instances.items())


def test_tls_contexts_are_shared_and_verify_certificates() -> None:
    params = {"quiet": True, "logger": QuietLogger()}
    first, second = YoutubeDL(params), YoutubeDL(params)
    contexts = [
        handler._make_sslcontext() for ydl in (first, second) for handler in ydl._request_director.handlers.values()
    ]
    assert len({id(context) for context in contexts}) == 1
    assert contexts[0].check_hostname and contexts[0].verify_mode.name == "CERT_REQUIRED"
    insecure = YoutubeDL({**params, "nocheckcertificate": True})
    handler = next(iter(insecure._request_director.handlers.values()))
    assert handler._make_sslcontext() is not contexts[0]
    assert not handler._make_sslcontext().check_hostname
