"""The local pool: worker processes on this machine, one intra-op thread each.

Why processes and not threads: torch releases the GIL inside an op, but a small model's
step is mostly Python between ops, and two OpenMP teams in one process slow each other
down (see runs.py). A worker is `python -m featurelab.workers.child`, started with the
kernel's own interpreter and connected by a socket pair: not multiprocessing's spawn,
which re-imports the caller's __main__ (a script without a main guard would start its
own sweep in every worker). Workers start on first use and stay for the next job (the
import of torch is most of a start); `close()` ends them, and they end on their own
when the kernel goes (their socket closes).
"""

from __future__ import annotations

import atexit
import os
import pickle
import queue
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from multiprocessing.connection import Connection
from pathlib import Path

from featurelab.workers.jobs import Job, Message
from featurelab.workers.remote import Worker, WorkerLost

PACKAGE_ROOT = Path(__file__).resolve().parents[2]  # the folder featurelab is imported from


def cores() -> int:
    """The cores this process may use (a container's share, not the host's)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


class ProcessWorker:
    def __init__(self) -> None:
        ours, theirs = socket.socketpair()
        env = dict(os.environ)
        # One thread each: the pool's parallelism is its processes.
        env.update(OMP_NUM_THREADS="1", MKL_NUM_THREADS="1")
        env["PYTHONPATH"] = os.pathsep.join([str(PACKAGE_ROOT), *filter(None, [
            env.get("PYTHONPATH")])])
        # A session of its own: the kernel's interrupt (sent to its process group) must
        # not reach a worker, least of all one still importing torch; the kernel cancels
        # its jobs itself. It still ends with the kernel: its socket closes.
        self.process = subprocess.Popen(  # noqa: S603  # this interpreter, our module
            [sys.executable, "-m", "featurelab.workers.child", str(theirs.fileno())],
            pass_fds=(theirs.fileno(),), env=env, stdin=subprocess.DEVNULL,
            start_new_session=True)
        theirs.close()
        self.conn = Connection(ours.detach())
        self._send_lock = threading.Lock()
        # Everything the worker says is read at once by a thread of its own: a cancel's
        # answer must never wait behind a flush that waits for the store (which the
        # cancelling action holds), or the two wait for each other.
        self._inbox: queue.Queue[Message | None] = queue.Queue()
        self._acks: dict[int, threading.Event] = {}
        self._acked: dict[int, int | None] = {}
        self._ended: set[int] = set()  # jobs whose end was read
        self._lock = threading.Lock()
        self._reader = threading.Thread(target=self._read, daemon=True,
                                        name=f"featurelab-worker-{self.process.pid}")
        self._reader.start()

    def _send(self, message: Message) -> None:
        # Plain pickle, not Connection.send: that pickler has torch's reducers, which
        # share a tensor (a checkpoint's) through a file descriptor the other side must
        # fetch from this process, and a worker then waits for it.
        with self._send_lock:
            self.conn.send_bytes(pickle.dumps(message, protocol=pickle.HIGHEST_PROTOCOL))

    def _read(self) -> None:
        while True:
            try:
                message = pickle.loads(self.conn.recv_bytes())  # noqa: S301  # our worker's
            except Exception:  # EOF, a closed socket, a message that does not unpickle
                self._inbox.put(None)
                with self._lock:  # no answer is coming any more
                    for event in self._acks.values():
                        event.set()
                return
            kind = message[0]
            if kind == "cancel_ack":
                _, job_id, at = message
                with self._lock:
                    self._acked[job_id] = at
                    event = self._acks.get(job_id)
                if event is not None:
                    event.set()
                continue
            if kind in ("end", "failed"):
                job_id = message[-1] if isinstance(message[-1], int) else None
                with self._lock:
                    ended = [job_id] if job_id is not None else list(self._acks)
                    for jid in ended:
                        self._ended.add(jid)
                        self._acked.setdefault(jid, None)
                        if jid in self._acks:
                            self._acks[jid].set()
            self._inbox.put(message)

    def alive(self) -> bool:
        return self.process.poll() is None

    def run(self, job: Job) -> Iterator[Message]:
        try:
            self._send(("job", job))
        except (OSError, pickle.PicklingError) as exc:
            raise WorkerLost(f"it could not be sent the job: {exc}") from None
        while True:
            message = self._inbox.get()
            if message is None:
                try:
                    code = self.process.wait(timeout=5)
                except subprocess.TimeoutExpired:
                    code = "unknown (its socket closed)"
                raise WorkerLost(f"process {self.process.pid} exited with code {code}")
            yield message[:-1] if message[0] in ("end", "failed") else message
            if message[0] in ("end", "failed"):
                return

    def cancel(self, job_id: int) -> int | None:
        with self._lock:
            if job_id in self._ended:
                return None
            event = self._acks.setdefault(job_id, threading.Event())
        try:
            self._send(("cancel", job_id))
        except OSError:
            return None
        event.wait(30.0)  # the reader hands the answer over (or the end, or the EOF)
        with self._lock:
            self._acks.pop(job_id, None)
            return self._acked.pop(job_id, None)

    def close(self) -> None:
        try:
            self._send(("stop",))
        except OSError:
            pass
        try:
            self.process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self.conn.close()


class ProcessPool:
    """Up to `size` worker processes, handed out first come, first served."""

    where = "process"

    def __init__(self, size: int | None = None) -> None:
        self.size = max(1, size or cores())
        self._idle: list[ProcessWorker] = []
        self._all: list[ProcessWorker] = []
        self._waiting: list[object] = []  # tickets, in the order jobs asked
        self._cond = threading.Condition()
        self._closed = False

    def acquire(self) -> ProcessWorker:
        ticket = object()
        with self._cond:
            self._waiting.append(ticket)
            try:
                while True:
                    if self._closed:
                        raise WorkerLost("the pool was closed")
                    if self._waiting[0] is ticket:
                        while self._idle:
                            worker = self._idle.pop()
                            if worker.alive():
                                return worker
                            self._all.remove(worker)
                        if len(self._all) < self.size:
                            worker = ProcessWorker()  # before anyone else may start one
                            self._all.append(worker)
                            return worker
                    self._cond.wait()
            finally:
                self._waiting.remove(ticket)
                self._cond.notify_all()

    def release(self, worker: Worker, broken: bool = False) -> None:
        assert isinstance(worker, ProcessWorker)
        with self._cond:
            if broken or not worker.alive() or self._closed:
                if worker in self._all:
                    self._all.remove(worker)
                threading.Thread(target=worker.close, daemon=True).start()
            else:
                self._idle.append(worker)
            self._cond.notify_all()

    @property
    def workers(self) -> int:
        """The worker processes started and alive."""
        with self._cond:
            return sum(w.alive() for w in self._all)

    def close(self) -> None:
        with self._cond:
            self._closed = True
            workers, self._all, self._idle = list(self._all), [], []
            self._cond.notify_all()
        for worker in workers:
            worker.close()


_POOL: ProcessPool | None = None
_POOL_LOCK = threading.Lock()


def local_pool(size: int | None = None) -> ProcessPool:
    """The kernel's pool, shared by every lab in it (its workers start once): as many
    workers as cores, more if a sweep asks for more (`workers=`, which otherwise only
    caps how many of them one sweep uses)."""
    global _POOL
    with _POOL_LOCK:
        if _POOL is None or _POOL._closed:
            _POOL = ProcessPool(cores())
        if size is not None and size > _POOL.size:
            with _POOL._cond:
                _POOL.size = size
        return _POOL


@atexit.register
def close_pools() -> None:
    """Ends every worker process (they also end on their own when the kernel does)."""
    global _POOL
    with _POOL_LOCK:
        pool, _POOL = _POOL, None
    if pool is not None:
        pool.close()
