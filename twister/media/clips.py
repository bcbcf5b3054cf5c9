"""Clip bounds as the contract writes them: "HH:MM:SS", "MM:SS" or seconds (fractions allowed)."""

from __future__ import annotations

import re

_CLOCK = re.compile(r"^(?:(\d+):)?([0-5]?\d):([0-5]?\d(?:\.\d+)?)$")
_SECONDS = re.compile(r"^\d+(?:\.\d+)?$")


def parse_timestamp(value: object) -> float:
    """Seconds from the start of the video; ValueError for anything else."""
    if isinstance(value, bool):
        raise ValueError("must be a time, not a boolean")
    if isinstance(value, int | float):
        seconds = float(value)
    elif not isinstance(value, str):
        raise ValueError('must be "HH:MM:SS", "MM:SS" or a number of seconds')
    elif _SECONDS.match(value.strip()):
        seconds = float(value.strip())
    elif match := _CLOCK.match(value.strip()):
        hours, minutes, secs = match.groups()
        seconds = int(hours or 0) * 3600 + int(minutes) * 60 + float(secs)
    else:
        raise ValueError('must be "HH:MM:SS", "MM:SS" or a number of seconds')
    if not 0 <= seconds < 10**7:
        raise ValueError("must be between 0 and 10,000,000 seconds")
    return seconds
