"""The files of a lab's store, judged before SQLite opens them, and the processes that
write it: only a missing file is a new lab (a new store appears whole, so an empty or
cut-short file is a damaged one, named, never opened as a new lab), and a run's process
is known by its start time as well as its pid (pids are reused).
"""

from __future__ import annotations

import os
import sqlite3
import uuid
from pathlib import Path

from featurelab.errors import StoreError

SQLITE_HEADER = b"SQLite format 3\x00"
DAMAGED = ("featurelab never starts a new lab over a damaged one: move it away (with the "
           "-wal and -shm files beside it, if any) to start afresh under this name, or "
           "restore it from a backup")


def damaged(exc: sqlite3.Error) -> bool:
    """Whether SQLite found the file damaged: corrupt, or not a database at all."""
    name = getattr(exc, "sqlite_errorname", None)  # Python 3.11+
    if name is None:
        return type(exc) is sqlite3.DatabaseError
    return name.startswith(("SQLITE_CORRUPT", "SQLITE_NOTADB"))


def check_file(path: Path) -> None:
    """Refuses a file that cannot be a lab's store: empty, not SQLite, or shorter than its
    header says. SQLite would take an empty file for a new database, and would read (and
    write into) a truncated one until it met a lost page."""
    try:
        size = path.stat().st_size
        with path.open("rb") as f:
            header = f.read(100)
    except OSError as exc:
        raise StoreError(path.absolute(), f"cannot be read ({exc.strerror or exc})") from None
    if size == 0:
        raise StoreError(path.absolute(), "is empty (0 bytes), so damaged: featurelab never "
                         "leaves a lab's store empty, not even a new one's", DAMAGED)
    if not header.startswith(SQLITE_HEADER):
        raise StoreError(path.absolute(), "is not an SQLite database (it does not start with "
                         "SQLite's header): not a lab's store, or a damaged one", DAMAGED)
    if len(header) < 100:
        raise StoreError(path.absolute(), f"is truncated: {size} bytes, shorter than "
                         "SQLite's 100-byte header", DAMAGED)
    page_size = int.from_bytes(header[16:18], "big")
    page_size = 65536 if page_size == 1 else page_size
    pages = int.from_bytes(header[28:32], "big")
    valid = header[24:28] == header[92:96]  # SQLite's test of the page count it records
    try:
        wal = path.with_name(path.name + "-wal").stat().st_size
    except OSError:
        wal = 0
    # A checkpoint cut short (a kill) can leave the file shorter than its header says
    # until SQLite copies the pages again from the WAL: with a WAL beside it, SQLite judges.
    if valid and pages and size < pages * page_size and not wal:
        raise StoreError(path.absolute(), f"is truncated: {size} bytes, where its header "
                         f"records {pages} pages of {page_size} bytes", DAMAGED)


def create(path: Path, schema: str) -> None:
    """Makes a new store whole under a temporary name, then links it into place: no one
    ever opens a half-made store, so an empty file is always a damaged one. When another
    process makes it first, theirs is the lab's."""
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex[:8]}.new")
    try:
        try:
            db = sqlite3.connect(str(tmp), isolation_level=None)
        except sqlite3.Error as exc:  # a folder this user cannot write, say
            raise StoreError(path.absolute(), f"cannot be created ({exc})") from None
        try:
            db.execute("PRAGMA journal_mode=WAL")  # kept in the file, for every opener
            db.executescript(schema)
            db.execute("PRAGMA wal_checkpoint(TRUNCATE)")  # all of it in the file itself
        finally:
            db.close()
        try:
            os.link(tmp, path)  # fails if the path exists: never replaces a lab
        except FileExistsError:
            pass
        except OSError:  # a file system without hard links: a rename, checked just before
            if not path.exists():
                os.replace(tmp, path)
    finally:
        for leftover in (tmp, tmp.with_name(tmp.name + "-wal"),
                         tmp.with_name(tmp.name + "-shm")):
            leftover.unlink(missing_ok=True)


def process_identity(pid: int) -> str | None:
    """What tells a process from a later one given the same pid: the boot it runs in and
    its start time (clock ticks after boot), as Linux's /proc has them. None where there
    is no /proc (then only the pid is checked)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
        boot = Path("/proc/sys/kernel/random/boot_id").read_text().strip()
    except OSError:
        return None
    # The command name (2nd field) may hold spaces and ')': count from its closing ')'.
    fields = stat.rpartition(")")[2].split()
    return f"{boot}/{fields[19]}" if len(fields) > 19 else None  # field 22: starttime
