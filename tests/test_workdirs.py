"""Work dirs of a worker host: a failed job's kept files, how long and how much of them stay, and a
replayed job taking them back."""

from __future__ import annotations

import os
import time
from pathlib import Path

from twister.worker.workdirs import KEPT_NAME, WorkDirs

HOUR = 3600.0


def with_files(workdirs: WorkDirs, job_id: str, size: int) -> Path:
    path = workdirs.fresh(job_id)
    (path / "stream.mp4").write_bytes(b"x" * size)
    return path


def age(path: Path, seconds: float) -> None:
    """Makes the directory look kept ``seconds`` ago."""
    then = time.time() - seconds
    os.utime(path / KEPT_NAME, (then, then))


def test_kept_files_stay_until_their_time_is_up(tmp_path: Path) -> None:
    workdirs = WorkDirs(tmp_path, keep_for=HOUR, keep_bytes=10**6)
    kept = with_files(workdirs, "failed", 1000)
    workdirs.keep("failed")
    (tmp_path / "orphan").mkdir()  # left by a dead worker: nobody holds it

    assert workdirs.sweep() == ["orphan"]
    assert (kept / "stream.mp4").exists()
    age(kept, HOUR + 1)
    assert workdirs.sweep() == ["failed"]
    assert not kept.exists()


def test_oldest_kept_files_go_first_beyond_the_bound(tmp_path: Path) -> None:
    workdirs = WorkDirs(tmp_path, keep_for=HOUR, keep_bytes=2500)
    for job_id, seconds in (("old", 30.0), ("newer", 20.0)):
        with_files(workdirs, job_id, 1000)
        workdirs.keep(job_id)
        age(workdirs.path(job_id), seconds)
    with_files(workdirs, "newest", 1000)
    workdirs.keep("newest")  # 3000 bytes kept: over the bound

    assert sorted(entry.name for entry in tmp_path.iterdir()) == ["newer", "newest"]


def test_a_replayed_job_takes_its_kept_files_back(tmp_path: Path) -> None:
    workdirs = WorkDirs(tmp_path, keep_for=HOUR, keep_bytes=10**6)
    path = with_files(workdirs, "replayed", 1000)
    workdirs.keep("replayed")
    age(path, HOUR + 1)

    assert workdirs.hold("replayed") == path
    assert not (path / KEPT_NAME).exists()
    assert workdirs.sweep() == [] and (path / "stream.mp4").exists()  # held: expired or not, it stays
    assert workdirs.hold("gone") == tmp_path / "gone" and not (tmp_path / "gone").exists()


def test_nothing_is_kept_without_a_time_to_keep(tmp_path: Path) -> None:
    workdirs = WorkDirs(tmp_path)
    path = with_files(workdirs, "failed", 10)
    workdirs.keep("failed")
    assert not path.exists()
