"""A worker process of the local pool: `python -m featurelab.workers.child FD`.

It reads jobs from the socket FD and sends each job's messages back; a listening thread
takes cancels while a job trains (they are exact: the trainer says the step it stops
at). Ctrl-C is the kernel's to handle: the kernel's interrupt reaches the whole process
group, and the kernel then cancels its jobs itself, exactly. The process ends when the
kernel says stop or its socket closes (the kernel went away).
"""

from __future__ import annotations

import pickle
import queue
import signal
import sys
import threading
from multiprocessing.connection import Connection

from featurelab.workers.jobs import Job, JobRunner, Message


def serve(conn: Connection) -> None:
    send_lock = threading.Lock()
    jobs: queue.Queue[Job | None] = queue.Queue()
    state_lock = threading.Lock()
    current: list[JobRunner | None] = [None]
    cancelled: set[int] = set()  # cancels for a job whose runner does not exist yet

    def send(message: Message) -> None:
        with send_lock:
            conn.send_bytes(pickle.dumps(message, protocol=pickle.HIGHEST_PROTOCOL))

    def listen() -> None:
        while True:
            try:
                message = pickle.loads(conn.recv_bytes())  # noqa: S301  # our own kernel's
            except (EOFError, OSError):
                jobs.put(None)
                return
            if message[0] == "job":
                jobs.put(message[1])
            elif message[0] == "cancel":
                job_id = message[1]
                with state_lock:
                    runner = current[0]
                    if runner is not None and runner.job.id == job_id:
                        at = runner.cancel()
                    else:  # not started yet: it stops before its first step
                        cancelled.add(job_id)
                        at = 0
                send(("cancel_ack", job_id, at))
            elif message[0] == "stop":
                jobs.put(None)
                return

    threading.Thread(target=listen, name="featurelab-worker-listen", daemon=True).start()
    while (job := jobs.get()) is not None:
        try:
            runner = JobRunner(job)
        except Exception as exc:  # said to the kernel, which ends the run
            send(("failed", f"the run could not start: {type(exc).__name__}: {exc}"))
            continue
        with state_lock:
            if job.id in cancelled:
                cancelled.discard(job.id)
                runner.cancel()
            current[0] = runner
        try:
            for message in runner.messages():
                # the end names its job: the kernel answers a cancel crossing it at once
                send((*message, job.id) if message[0] == "end" else message)
        except (OSError, EOFError):  # the kernel went away
            return
        finally:
            with state_lock:
                current[0] = None


def main() -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    serve(Connection(int(sys.argv[1])))


if __name__ == "__main__":
    main()
