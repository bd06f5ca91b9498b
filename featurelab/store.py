"""Persistence: one SQLite database per lab (WAL mode), snapshots as .npy beside it.

The `actions` table is the lab's log and the source of truth: a Lab is the fold
of its actions, so reopening a lab (or a second Lab on the same file) replays
them, taking run results from the `runs` and `series` tables instead of
training again. Series are appended in chunks, one transaction per trainer
flush, so a process killed mid-run leaves every flushed step readable and the
database consistent (SQLite's journal makes each commit atomic).
"""

from __future__ import annotations

import io
import json
import os
import socket
import sqlite3
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from pathlib import Path
from typing import Any

import numpy as np

from featurelab.errors import StoreError, disk_full
from featurelab.store_files import DAMAGED, check_file, create, damaged, process_identity

SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS actions (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    id TEXT UNIQUE NOT NULL,
    type TEXT NOT NULL,
    version INTEGER NOT NULL,
    params TEXT NOT NULL,      -- JSON
    actor TEXT NOT NULL,       -- human | code | agent
    time REAL NOT NULL,        -- unix seconds when it was applied
    duration REAL,             -- seconds; for runs, until the run ended
    result TEXT,               -- JSON summary
    cell TEXT,                 -- id of the notebook cell that executed it, if any
    session INTEGER NOT NULL DEFAULT 0  -- the lab session (log) it belongs to
);
CREATE TABLE IF NOT EXISTS runs (
    id TEXT PRIMARY KEY,
    experiment TEXT NOT NULL,
    cache_key TEXT NOT NULL,
    config TEXT NOT NULL,      -- JSON
    status TEXT NOT NULL,      -- running | finished | cancelled | diverged | failed | interrupted
    steps_done INTEGER NOT NULL DEFAULT 0,
    n_steps INTEGER NOT NULL,
    info TEXT NOT NULL DEFAULT '{}',
    error TEXT NOT NULL DEFAULT '',
    stat_errors TEXT NOT NULL DEFAULT '{}',
    digests TEXT NOT NULL DEFAULT '{}',
    pid INTEGER, host TEXT, started REAL, ended REAL,
    proc TEXT                  -- what tells its process from a later one with the same pid
);
CREATE INDEX IF NOT EXISTS runs_by_key ON runs (cache_key, status);
CREATE INDEX IF NOT EXISTS actions_by_session ON actions (session, seq);
CREATE TABLE IF NOT EXISTS series (
    run_id TEXT NOT NULL,
    key TEXT NOT NULL,
    start INTEGER NOT NULL,    -- first step of this chunk
    data BLOB NOT NULL,        -- .npy bytes, (steps,) or (steps, neurons)
    PRIMARY KEY (run_id, key, start)
);
INSERT OR IGNORE INTO meta VALUES ('schema_version', '3');
-- The signatures of actions that run code (featurelab.signatures), beside the actions
-- so that a store of any version takes them, and re-signing touches nothing else.
CREATE TABLE IF NOT EXISTS signatures (action_id TEXT PRIMARY KEY, signature TEXT NOT NULL);
"""
LIVE = "running"
MEMORY_NAME = "the in-memory store"
# Version 1: actions without `cell`; 2: with `cell`, earlier logs in `archived_actions`;
# 3: every log is a session of the `actions` table (meta "session" names the latest).
SCHEMA_VERSION = 3
COLUMNS = "seq, id, type, version, params, actor, time, duration, result, cell, session"


def _npy(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    np.save(buffer, np.ascontiguousarray(array), allow_pickle=False)
    return buffer.getvalue()


def _action_row(r: tuple) -> dict[str, Any]:
    return {"seq": r[0], "id": r[1], "type": r[2], "version": r[3],
            "params": json.loads(r[4]), "actor": r[5], "time": r[6], "duration": r[7],
            "result": json.loads(r[8]) if r[8] else None, "cell": r[9], "session": r[10]}


def _pid_alive(pid: int | None, host: str | None, proc: str | None = None) -> bool:
    if host != socket.gethostname():
        return True  # another machine's process: it cannot be checked from here
    if pid is None:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass  # alive, another user's: its identity below may still show the pid reused
    if proc is None:  # recorded by a featurelab that kept only the pid
        return True
    now = process_identity(pid)
    return now is None or now == proc  # another start time: the pid was reused


def _retry_locked(do: Any, seconds: float = 60.0) -> Any:
    """Runs `do`, retrying while the database is locked. Switching a new file to WAL,
    and creating the schema, can fail with SQLITE_BUSY at once, without the busy
    handler, when another process opens the same new lab at the same moment."""
    deadline = time.monotonic() + seconds
    pause = 0.01
    while True:
        try:
            return do()
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) and "busy" not in str(exc):
                raise
            if time.monotonic() > deadline:
                raise
            time.sleep(pause)
            pause = min(pause * 2, 0.5)


class Store:
    """A lab's database. Thread-safe: one connection per thread, writes serialised."""

    def __init__(self, path: str | Path) -> None:
        self.memory = str(path) == ":memory:"
        self.path = Path(path) if not self.memory else None
        if self.path is not None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            if not self.path.exists():  # only a missing file is a new lab
                create(self.path, SCHEMA)
            check_file(self.path)
        self._local = threading.local()
        self._write_lock = threading.RLock()
        self._shared: sqlite3.Connection | None = None
        try:
            with self._damage_named():
                if self.memory:  # one connection: every thread must see the same database
                    self._shared = self._connect()
                with self._write_lock:  # executescript commits by itself: no BEGIN around it
                    _retry_locked(self._upgrade)
                    _retry_locked(lambda: self.db.executescript(SCHEMA))
            self.mark_interrupted_runs()
        except StoreError:
            self.close()
            raise

    @contextmanager
    def _damage_named(self) -> Iterator[None]:
        """SQLite's word that the file is damaged, or that its disk is full, as an error
        naming the file (any action's write may be the one that meets a full disk)."""
        try:
            yield
        except sqlite3.DatabaseError as exc:
            where = self.path.absolute() if self.path is not None else MEMORY_NAME
            full = disk_full(exc, where)
            if full is not None:
                raise full from exc
            if not damaged(exc):
                raise
            raise StoreError(where, f"is damaged (SQLite: {exc})", DAMAGED) from exc

    def _upgrade(self) -> None:
        """Brings a store written by an earlier featurelab to SCHEMA_VERSION, in one
        transaction (a crash half-way leaves the old store as it was)."""
        db = self.db
        tables = {r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type='table'")}
        if "actions" not in tables:
            return  # a new store: SCHEMA creates it at the current version
        db.execute("BEGIN IMMEDIATE")
        try:
            columns = {row[1] for row in db.execute("PRAGMA table_info(actions)")}
            if "cell" not in columns:  # version 1
                db.execute("ALTER TABLE actions ADD COLUMN cell TEXT")
            # A column any version may lack, added without a new version: a featurelab
            # that knows nothing of it names its columns, and so never misses it.
            run_columns = {row[1] for row in db.execute("PRAGMA table_info(runs)")}
            if run_columns and "proc" not in run_columns:
                db.execute("ALTER TABLE runs ADD COLUMN proc TEXT")
            if "session" not in columns:  # versions 1 and 2
                db.execute("ALTER TABLE actions ADD COLUMN session INTEGER NOT NULL DEFAULT 0")
                if "archived_actions" in tables:
                    # Archive k held the log that was current before the k-th fresh start:
                    # it becomes session k - 1, and the current log the latest session.
                    latest = db.execute("SELECT COALESCE(MAX(archive), 0) "
                                        "FROM archived_actions").fetchone()[0]
                    db.execute("UPDATE actions SET session = ?", (latest,))
                    db.execute(f"INSERT INTO actions ({COLUMNS}) SELECT seq, id, type, "  # noqa: S608
                               "version, params, actor, time, duration, result, cell, "
                               "archive - 1 FROM archived_actions")
                    db.execute("DROP TABLE archived_actions")
                    db.execute("CREATE TABLE IF NOT EXISTS meta "
                               "(key TEXT PRIMARY KEY, value TEXT NOT NULL)")
                    db.execute("INSERT OR REPLACE INTO meta VALUES ('session', ?)",
                               (str(latest),))
            db.execute("CREATE TABLE IF NOT EXISTS meta "
                       "(key TEXT PRIMARY KEY, value TEXT NOT NULL)")
            db.execute("INSERT OR REPLACE INTO meta VALUES ('schema_version', ?)",
                       (str(SCHEMA_VERSION),))
        except BaseException:
            db.execute("ROLLBACK")
            raise
        db.execute("COMMIT")

    def schema_version(self) -> int:
        rows = self.read("SELECT value FROM meta WHERE key = 'schema_version'")
        return int(rows[0][0]) if rows else SCHEMA_VERSION

    @property
    def snapshot_root(self) -> Path | None:
        return None if self.path is None else self.path.with_suffix(".snapshots")

    @property
    def folder(self) -> Path:
        """The lab's folder, where an agent may write files: the directory of its store
        (`root`), or the working directory for an in-memory lab, which has none."""
        return Path.cwd() if self.path is None else self.path.parent.absolute()

    def files(self) -> list[Path]:
        """The files of this store, resolved: the database, SQLite's files beside it."""
        if self.path is None:
            return []
        own = self.path.resolve()
        return [own, *(own.with_name(own.name + end) for end in ("-wal", "-shm", "-journal"))]

    def owns(self, path: str | Path) -> bool:
        """Whether writing `path` would write into this store: its database, SQLite's files
        beside it, or its snapshots, by whatever name (a symlink, '..', a hard link)."""
        if self.path is None:
            return False
        target = Path(path).resolve()
        root = self.snapshot_root.resolve()  # type: ignore[union-attr]
        if target in self.files() or target.is_relative_to(root):
            return True
        for own in self.files():
            try:
                if os.path.samefile(target, own):
                    return True
            except OSError:  # one of them does not exist
                continue
        return False

    def _connect(self) -> sqlite3.Connection:
        target = ":memory:" if self.memory else str(self.path)
        db = sqlite3.connect(target, timeout=60, isolation_level=None,
                             check_same_thread=not self.memory)
        db.execute("PRAGMA busy_timeout=60000")
        if not self.memory:
            _retry_locked(lambda: db.execute("PRAGMA journal_mode=WAL"))
            db.execute("PRAGMA synchronous=NORMAL")  # WAL + NORMAL: atomic, durable at checkpoints
        return db

    @property
    def db(self) -> sqlite3.Connection:
        if self._shared is not None:
            return self._shared
        db = getattr(self._local, "db", None)
        if db is None:
            db = self._local.db = self._connect()
        return db

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """BEGIN IMMEDIATE: takes the write lock up front, so a read-then-write in the
        block cannot interleave with another writer (thread or process)."""
        with self._write_lock, self._damage_named():
            db = self.db
            db.execute("BEGIN IMMEDIATE")
            try:
                yield db
            except BaseException:
                db.execute("ROLLBACK")
                raise
            db.execute("COMMIT")

    def read(self, sql: str, args: tuple = ()) -> list[tuple]:
        with (self._write_lock if self._shared is not None else nullcontext(),
              self._damage_named()):
            return self.db.execute(sql, args).fetchall()

    def close(self) -> None:
        db = getattr(self._local, "db", None)
        if db is not None:
            db.close()
            self._local.db = None

    # -- actions ------------------------------------------------------------------------

    def actions_after(self, seq: int, session: int | None = None) -> list[dict[str, Any]]:
        """The actions stored after `seq`: of one session, or of every session."""
        where, args = ("session = ? AND ", (session,)) if session is not None else ("", ())
        rows = [_action_row(r) for r in self.read(
            f"SELECT {COLUMNS} FROM actions WHERE {where}seq > ? ORDER BY seq",  # noqa: S608
            (*args, seq))]
        if rows:
            signed = dict(self.read("SELECT action_id, signature FROM signatures"))
            for row in rows:
                row["signature"] = signed.get(row["id"])
        return rows

    @staticmethod
    def insert_action(db: sqlite3.Connection, entry: dict[str, Any], session: int) -> int:
        cur = db.execute(
            "INSERT INTO actions (id, type, version, params, actor, time, duration, result, "
            "cell, session) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (entry["id"], entry["type"], entry["version"], json.dumps(entry["params"]),
             entry["actor"], entry["time"], entry["duration"], json.dumps(entry["result"]),
             entry.get("cell"), session))
        assert cur.lastrowid is not None  # an INSERT into a rowid table always sets it
        if entry.get("signature"):
            db.execute("INSERT OR REPLACE INTO signatures VALUES (?, ?)",
                       (entry["id"], entry["signature"]))
        return cur.lastrowid

    def sign_actions(self, types: set[str], sign: Any, ids: set[str] | None = None) -> int:
        """Signs the stored actions of `types` (all sessions; only those in `ids` if
        given) with sign(action dict); returns how many. What `featurelab trust` does."""
        with self.transaction() as db:
            rows = [_action_row(r) for r in db.execute(
                f"SELECT {COLUMNS} FROM actions ORDER BY seq")  # noqa: S608
                if r[2] in types and (ids is None or r[1] in ids)]
            db.executemany("INSERT OR REPLACE INTO signatures VALUES (?, ?)",
                           [(row["id"], sign(row)) for row in rows])
        return len(rows)

    # -- sessions: a lab's logs ---------------------------------------------------------
    # A session is one log of the lab. Lab(fresh=True) and lab.reset() start a new one;
    # the earlier ones stay in the table, and a Lab folds only its own session, so two
    # kernels on one lab never renumber each other's experiments.

    @staticmethod
    def latest_session(db: sqlite3.Connection) -> int:
        row = db.execute("SELECT value FROM meta WHERE key = 'session'").fetchone()
        if row is not None:
            return int(row[0])
        return int(db.execute("SELECT COALESCE(MAX(session), 0) FROM actions").fetchone()[0])

    @staticmethod
    def new_session(db: sqlite3.Connection) -> int:
        """Starts an empty session, the latest from now on; returns its number."""
        number = Store.latest_session(db) + 1
        db.execute("INSERT OR REPLACE INTO meta VALUES ('session', ?)", (str(number),))
        return number

    def sessions(self) -> dict[int, int]:
        """Every session with at least one action: number -> count of actions."""
        return dict(self.read("SELECT session, COUNT(*) FROM actions GROUP BY session "
                              "ORDER BY session"))

    def archived_logs(self) -> dict[int, list[dict[str, Any]]]:
        """The logs of every session but the latest, by session number."""
        latest = self.latest_session(self.db)
        logs: dict[int, list[dict[str, Any]]] = {}
        for r in self.read(f"SELECT {COLUMNS} FROM actions WHERE session != ? "  # noqa: S608
                           "ORDER BY session, seq", (latest,)):
            logs.setdefault(r[10], []).append(_action_row(r))
        return logs

    def update_action_result(self, action_id: str, result: dict[str, Any],
                             duration: float) -> None:
        with self.transaction() as db:
            db.execute("UPDATE actions SET result = ?, duration = ? WHERE id = ?",
                       (json.dumps(result), duration, action_id))

    # -- runs ---------------------------------------------------------------------------

    def create_run(self, run_id: str, experiment: str, cache_key: str, config: dict,
                   n_steps: int) -> None:
        with self.transaction() as db:
            db.execute("INSERT INTO runs (id, experiment, cache_key, config, status, n_steps, "
                       "pid, host, started, proc) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                       (run_id, experiment, cache_key, json.dumps(config), LIVE, n_steps,
                        os.getpid(), socket.gethostname(), time.time(),
                        process_identity(os.getpid())))

    def append_series(self, run_id: str, start: int, stop: int,
                      chunks: dict[str, np.ndarray]) -> None:
        """One trainer flush: the rows [start, stop) of every series, in one commit."""
        with self.transaction() as db:
            db.executemany("INSERT OR REPLACE INTO series (run_id, key, start, data) "
                           "VALUES (?, ?, ?, ?)",
                           [(run_id, k, start, _npy(v)) for k, v in chunks.items()])
            db.execute("UPDATE runs SET steps_done = ? WHERE id = ?", (stop, run_id))

    def finish_run(self, run_id: str, status: str, info: dict, error: str,
                   stat_errors: dict, digests: dict) -> None:
        with self.transaction() as db:
            db.execute("UPDATE runs SET status = ?, info = ?, error = ?, stat_errors = ?, "
                       "digests = ?, ended = ? WHERE id = ?",
                       (status, json.dumps(info), error, json.dumps(stat_errors),
                        json.dumps(digests), time.time(), run_id))

    def run_row(self, run_id: str) -> dict[str, Any] | None:
        rows = self.read("SELECT id, experiment, cache_key, config, status, steps_done, n_steps, "
                         "info, error, stat_errors, digests FROM runs WHERE id = ?", (run_id,))
        if not rows:
            return None
        r = rows[0]
        return {"id": r[0], "experiment": r[1], "cache_key": r[2], "config": json.loads(r[3]),
                "status": r[4], "steps_done": r[5], "n_steps": r[6], "info": json.loads(r[7]),
                "error": r[8], "stat_errors": json.loads(r[9]), "digests": json.loads(r[10])}

    def finished_run(self, cache_key: str) -> str | None:
        rows = self.read("SELECT id FROM runs WHERE cache_key = ? AND status = 'finished' "
                         "ORDER BY started DESC LIMIT 1", (cache_key,))
        return rows[0][0] if rows else None

    def cancelled_run(self, cache_key: str, steps: int) -> str | None:
        """The latest run of this key that was cancelled after exactly `steps` steps: what
        rerunning a cancelled run's cell (`lab.run(e, stop_at=steps)`) reuses."""
        rows = self.read("SELECT id FROM runs WHERE cache_key = ? AND status = 'cancelled' "
                         "AND steps_done = ? ORDER BY started DESC LIMIT 1", (cache_key, steps))
        return rows[0][0] if rows else None

    def load_series(self, run_id: str, steps_done: int) -> dict[str, np.ndarray]:
        """Every series of a run, cut to the steps known complete. A series that began
        later in the run (a statistic added mid-way) is NaN before its first chunk."""
        out: dict[str, np.ndarray] = {}
        for key, start, data in self.read("SELECT key, start, data FROM series WHERE run_id = ? "
                                          "ORDER BY key, start", (run_id,)):
            chunk = np.load(io.BytesIO(data))
            if key not in out:
                out[key] = np.full((steps_done, *chunk.shape[1:]), np.nan, dtype=chunk.dtype)
            stop = min(start + len(chunk), steps_done)
            if stop > start:
                out[key][start:stop] = chunk[: stop - start]
        return out

    def mark_interrupted_runs(self) -> None:
        """Runs left 'running' by a process that no longer exists were interrupted (also
        when its pid now belongs to another process: its start time tells them apart)."""
        stale = [r[0] for r in self.read("SELECT id, pid, host, proc FROM runs "
                                         "WHERE status = ?", (LIVE,))
                 if not _pid_alive(r[1], r[2], r[3])]
        if stale:
            with self.transaction() as db:
                db.executemany("UPDATE runs SET status = 'interrupted', error = "
                               "'the process running it stopped (kernel restart or kill)' "
                               "WHERE id = ? AND status = ?", [(s, LIVE) for s in stale])

    def integrity_check(self) -> str:
        return self.read("PRAGMA integrity_check")[0][0]
