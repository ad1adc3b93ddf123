"""No hang when a rank fails: bounded waits, and an abort on any uncaught exception.

MPI collectives block until every rank joins, so one rank that raises (or exits, or
sticks) would leave the others waiting forever. Two guards, both active while a process
group is open:

- every wait on other ranks polls its requests (`MPI.Request.Testall`) against a
  deadline (the group's timeout, default 300 s) and raises `DistributedTimeoutError`
  naming the operation, the rank and the timeout;
- an uncaught exception in any rank (including that timeout) prints its traceback, then
  one line naming the rank, then calls `MPI_Abort`, which ends every rank of the job
  with a non-zero status.

A rank that dies outright (os._exit, a signal, the OOM killer) is noticed by the launcher:
MPICH's mpiexec stops the other ranks at once and exits with the dead rank's status. A
rank that fails before opening the group is handled in group.py (a watchdog around
MPI_Init).
"""
from __future__ import annotations

import os
import sys
import threading
import time

ABORT_EXIT_CODE = 1
"""The status MPI_Abort gives the job when a rank raised."""


class DistributedTimeoutError(RuntimeError):
    """A wait on other ranks passed the process group's timeout."""


ABORT_GRACE_S = 1.0
"""How long a failing rank waits between printing and MPI_Abort. mpiexec forwards each
rank's output asynchronously and drops what is still in flight when the abort ends the
job: without the wait, a loaded CI machine once lost both ranks' tracebacks."""


def _flush_and_abort(group, status):
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except Exception:   # a closed stream must not stop the abort
            pass
    time.sleep(ABORT_GRACE_S)
    group.MPI.COMM_WORLD.Abort(int(status))


SPIN_S = 0.1
"""How long a wait polls without sleeping before it starts to sleep between polls."""


def wait_all(group, requests, what, timeout_s=None):
    """Wait until every MPI request in `requests` completes, or raise after `timeout_s`
    (default: the group's timeout).

    MPI progresses a non-blocking collective only inside MPI calls, so the wait first
    polls `Testall` back to back for up to `SPIN_S` (sleeping between polls there made a
    4.8 MB allreduce 3x slower); a longer wait (a slow or dead peer) then sleeps between
    polls, up to 1 ms, to leave the core to others."""
    MPI = group.MPI
    if MPI.Request.Testall(requests):
        return
    timeout_s = group.timeout_s if timeout_s is None else timeout_s
    now = time.monotonic()
    deadline, spin_until = now + timeout_s, now + min(SPIN_S, timeout_s)
    pause = 1e-5
    while not MPI.Request.Testall(requests):
        now = time.monotonic()
        if now < spin_until:
            continue
        if now > deadline:
            raise DistributedTimeoutError(
                f"{what}: rank {group.rank} of {group.size} waited {timeout_s:g} s for "
                f"the other ranks and gives up; one of them has probably died, raised or is "
                f"stuck (if a step legitimately takes longer, pass a larger timeout= to "
                f"init_process_group)")
        time.sleep(pause)
        pause = min(pause * 2, 1e-3)


def abort_job(group, status, reason):
    """Print one line naming this rank and `reason`, then end every rank of the job with
    `status` (MPI_Abort): what a rank does when it fails alone and the others would
    otherwise wait for it in their next collective."""
    sys.stderr.write(f"tinygrad_cv.distributed: rank {group.rank} of {group.size}: {reason}; "
                     f"aborting all ranks (MPI_Abort)\n")
    _flush_and_abort(group, status)


_previous_hooks = None


def install_abort_on_uncaught(get_group):
    """Chain sys.excepthook and threading.excepthook so an uncaught exception aborts the
    whole MPI job (after the usual traceback), instead of leaving peers blocked."""
    global _previous_hooks
    if _previous_hooks is not None:
        return
    previous_sys, previous_thread = sys.excepthook, threading.excepthook
    rank_pid = os.getpid()

    def abort(where):
        group = get_group()
        if group is None or os.getpid() != rank_pid:   # a forked child (a DataLoader
            return                                      # worker) is no MPI rank
        sys.stderr.write(f"tinygrad_cv.distributed: rank {group.rank} of {group.size} failed "
                         f"with an uncaught exception{where}; aborting all ranks "
                         f"(MPI_Abort)\n")
        _flush_and_abort(group, ABORT_EXIT_CODE)

    def sys_hook(exc_type, exc, tb):
        previous_sys(exc_type, exc, tb)
        abort("")                 # Ctrl-C in one rank too: the others must not hang

    def thread_hook(args):
        previous_thread(args)
        if args.exc_type is not SystemExit:
            name = args.thread.name if args.thread is not None else "?"
            abort(f" in thread {name!r}")

    sys.excepthook, threading.excepthook = sys_hook, thread_hook
    _previous_hooks = (previous_sys, previous_thread, sys_hook, thread_hook)


def uninstall_abort_on_uncaught():
    """Restore the hooks `install_abort_on_uncaught` replaced (unless someone else has
    replaced them since, in which case theirs stay)."""
    global _previous_hooks
    if _previous_hooks is None:
        return
    previous_sys, previous_thread, sys_hook, thread_hook = _previous_hooks
    if sys.excepthook is sys_hook:
        sys.excepthook = previous_sys
    if threading.excepthook is thread_hook:
        threading.excepthook = previous_thread
    _previous_hooks = None
