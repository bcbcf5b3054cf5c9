"""A worker process and what its host-bound activities share: work dirs, job slots, heartbeats."""
