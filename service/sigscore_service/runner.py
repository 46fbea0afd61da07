"""One task, one process: each job or synchronous request runs in its own child process.

Children are forked from a **fork server** (``multiprocessing`` ``forkserver`` context) that
has imported the library once (:mod:`sigscore_service._preload`), so a child starts in
milliseconds instead of paying seconds of imports. A child that crashes, is killed by the
kernel's OOM killer, runs past its time limit or is cancelled ends that task only.

When the supervising process dies, its children die with it: each child watches the pipe
its answer goes through (the supervisor holds the only read end, which the kernel closes
when the supervisor dies, SIGKILL included) and kills itself when the reader is gone; the
fork server exits when its own pipe from the supervisor closes, and every child also asks
the kernel for SIGKILL when the fork server dies (``prctl(PR_SET_PDEATHSIG)``). Children stay in the supervisor's
process group, so stopping the group (a container runtime, a test) stops them too.

The fork server only imports modules; it never runs a numba kernel, because numba's
parallel thread pools are not safe to fork.
"""

from __future__ import annotations

import contextlib
import ctypes
import multiprocessing
import os
import queue
import select
import signal
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future
from concurrent.futures.process import BrokenProcessPool
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

PR_SET_PDEATHSIG = 1
#: file in a task's result folder that names the process running it (operators, tests)
PID_FILE = ".pid"
#: tests only: each child appends "start|end <task key> <pid> <time> <supervisor pid>" lines
#: to this file (the supervisor is the worker or API process whose fork server forked it)
RUN_LOG_ENV = "SIGSCORE_TEST_RUN_LOG"

_ctx = multiprocessing.get_context("forkserver")
_ctx.set_forkserver_preload(["sigscore_service._preload"])


class ChildDied(BrokenProcessPool):
    """The task's process ended without an answer (killed, crashed, out of memory).

    A :class:`BrokenProcessPool` so callers that handled a dead pool worker keep working.
    """

    def __init__(self, exitcode: int | None) -> None:
        how = f"signal {-exitcode}" if exitcode is not None and exitcode < 0 else f"{exitcode}"
        super().__init__(f"the task's process ended without an answer (exit {how})")
        self.exitcode = exitcode


def die_with_parent() -> None:
    """Ask Linux to SIGKILL this process when its parent dies (no-op elsewhere)."""
    with contextlib.suppress(OSError, AttributeError):
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)


def _run_log(event: str, key: str, fork_server: int) -> None:
    path = os.environ.get(RUN_LOG_ENV)
    if path:  # one write of one short line with O_APPEND: lines never interleave
        # the supervisor is the fork server's parent; naming it lets a test tell exactly
        # which process's death ended a run, without racing a snapshot of its children
        try:
            with open(f"/proc/{fork_server}/stat") as f:
                supervisor = int(f.read().rsplit(")", 1)[1].split()[1])
        except (OSError, ValueError, IndexError):
            supervisor = -1
        line = f"{event} {key} {os.getpid()} {time.time():.3f} {supervisor}\n"
        fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        try:
            os.write(fd, line.encode())
        finally:
            os.close(fd)


def _watch_supervisor(fd: int) -> None:
    """Block until the pipe to the supervisor has no reader left, then die."""
    poller = select.poll()
    poller.register(fd, select.POLLERR | select.POLLHUP)  # no POLLOUT: waits for an error
    while not poller.poll():
        pass
    os.kill(os.getpid(), signal.SIGKILL)


def _child_main(task: dict[str, Any], conn: Connection, parent: int) -> None:
    die_with_parent()  # again: a fork server started without the preload's fork hook
    # multiprocessing hands every child the write end of the pipe whose closing tells the
    # fork server that the supervisor died: a child keeping it would keep the fork server,
    # and so itself, alive after the supervisor's death
    with contextlib.suppress(AttributeError, OSError, TypeError):
        os.close(multiprocessing.parent_process().sentinel)  # type: ignore[union-attr]
    # Ctrl-C reaches the whole process group: the supervisor decides what stops a task
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    if os.getppid() != parent:  # the fork server died before prctl took effect
        os._exit(1)
    # the supervisor holds the only read end of this pipe: it closes when the supervisor
    # dies, however (SIGKILL included), and the watchdog ends this task at once
    threading.Thread(target=_watch_supervisor, args=(conn.fileno(),), daemon=True).start()
    from .worker import run_task

    result_dir = Path(task["result_dir"])
    key = str(task.get("run_key") or result_dir.name)
    with contextlib.suppress(OSError):
        result_dir.mkdir(parents=True, exist_ok=True)
        (result_dir / PID_FILE).write_text(str(os.getpid()))
    _run_log("start", key, parent)
    res = run_task(task)
    if res.get("ok"):
        _run_log("end", key, parent)
    conn.send(res)
    conn.close()


_launch_queue: queue.SimpleQueue[tuple[Callable[[], Any], Future]] = queue.SimpleQueue()
_launcher_lock = threading.Lock()
_launcher: threading.Thread | None = None


def _launch_loop() -> None:
    while True:
        fn, fut = _launch_queue.get()
        try:
            fut.set_result(fn())
        except BaseException as exc:  # handed to the caller
            fut.set_exception(exc)


def _in_launcher(fn: Callable[[], Any]) -> Any:
    """Run ``fn`` on the one long-lived launcher thread and return its result.

    The fork server asks for SIGKILL when the thread that started it ends
    (``PR_SET_PDEATHSIG`` follows the parent *thread*): it must be started, and restarted,
    by a thread that lives as long as the process, never by a task's short-lived thread.
    """
    global _launcher
    with _launcher_lock:
        if _launcher is None or not _launcher.is_alive():
            _launcher = threading.Thread(target=_launch_loop, name="sigscore-launcher", daemon=True)
            _launcher.start()
    fut: Future = Future()
    _launch_queue.put((fn, fut))
    return fut.result()


def start_fork_server() -> int:
    """Start the fork server now (its imports take seconds); returns its pid."""
    return int(_in_launcher(_fork_server_pid))


def _fork_server_pid() -> int:
    """The fork server's pid (started on first use)."""
    from multiprocessing import forkserver

    forkserver.ensure_running()
    pid = getattr(forkserver._forkserver, "_forkserver_pid", None)
    return int(pid) if pid else 0


class Child(Future):
    """A task running in its own process; a :class:`~concurrent.futures.Future` of its answer.

    ``cancel()`` (also what asyncio does to a wrapped future on time-out or a client's
    disconnect) kills the process. The answer is the worker's plain dict; a process that
    ends without one sets :class:`ChildDied`.
    """

    def __init__(self, task: dict[str, Any]) -> None:
        super().__init__()
        self.pid = 0
        self.killed = False
        self.proc: Any = None
        self.set_running_or_notify_cancel()
        # started off the caller's thread: forking through the fork server waits for it (a
        # busy or stopped server must not stall an event loop)
        threading.Thread(target=self._run, args=(task,), daemon=True, name="sigscore-child").start()

    def _run(self, task: dict[str, Any]) -> None:
        res: Any = None
        try:
            recv, send = _ctx.Pipe(duplex=False)
            proc = _ctx.Process(
                target=_child_main, args=(task, send, start_fork_server()), daemon=True
            )
            if not self.killed:
                _in_launcher(proc.start)
                self.proc, self.pid = proc, int(proc.pid or 0)
                if self.killed:  # kill() ran while the process was being started
                    proc.kill()
            send.close()
            if self.proc is not None:
                with contextlib.suppress(EOFError, OSError):
                    res = recv.recv()
                proc.join()
            recv.close()
        except Exception as exc:  # the fork server could not start a process
            res = exc
        with contextlib.suppress(Exception):  # already settled
            if isinstance(res, dict):
                self.set_result(res)
            else:
                code = self.proc.exitcode if self.proc is not None else None
                self.set_exception(ChildDied(code))

    def kill(self) -> None:
        """SIGKILL the process (idempotent); the future then fails with :class:`ChildDied`."""
        self.killed = True  # set first: _run checks it after publishing the process
        proc = self.proc
        if proc is not None:
            with contextlib.suppress(ProcessLookupError, ValueError, AttributeError):
                proc.kill()

    def cancel(self) -> bool:
        self.kill()
        return False  # it is running: the answer (ChildDied) arrives once the process is gone


def warm_up() -> float:
    """Start the fork server (its imports) and run the bundled example in one child, so the
    first real task starts at once; returns the seconds it took."""
    import tempfile

    import sigscore

    t0 = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="sigscore-warm-up-") as tmp:
        task = {"files": {"file": str(sigscore.example_path())}, "result_dir": tmp,
                "options": {"params": {}, "index": False}, "run_key": "warm-up",
                "report": False}  # fmt: skip
        child = Child(task)
        with contextlib.suppress(Exception):  # warm-up only: a failure shows in real tasks
            child.result()
    return time.monotonic() - t0
