"""What every ``twister`` command shares: its settings, and how it leaves."""

from __future__ import annotations

import os
import sys
from typing import NoReturn

from twister.config import Settings
from twister.logs import configure_logging


def load_settings() -> Settings:
    """The settings, with logging configured as they say."""
    from twister.embedded.postgres import with_app_password

    settings = Settings()
    configure_logging(settings.log_format)
    return with_app_password(settings, create=False)


def exit_now(code: int) -> NoReturn:
    """Leaves without interpreter finalization: the Temporal client's Rust threads can abort it
    (temporalio/sdk-python#300) after all work is done."""
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)
