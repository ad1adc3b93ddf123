"""The default process group: MPI's COMM_WORLD, opened by `init_process_group`.

mpi4py is imported here and only here, inside `init_process_group`, so importing
tinygrad_cv (or this package) never imports it: the `dist` extra is optional. One group
per process, as torch's default group; `destroy_process_group` closes it (MPI itself is
finalised by mpi4py when the process exits, so a group can be opened again).
"""
from __future__ import annotations

import datetime
import faulthandler
import importlib.util
import numbers
import os
import threading

from .faults import install_abort_on_uncaught, uninstall_abort_on_uncaught

DEFAULT_TIMEOUT_S = 300.0
"""How long a collective or a DDP gradient wait may take before the rank gives up (s)."""

_NOT_INITIALISED = ("Default process group has not been initialized, please make sure to "
                    "call init_process_group.")


class _Group:
    """What an open process group holds: the communicator and its facts."""

    def __init__(self, mpi, comm, timeout_s, local_rank, local_size):
        self.MPI = mpi
        self.comm = comm
        self.rank = comm.Get_rank()
        self.size = comm.Get_size()
        self.timeout_s = timeout_s
        self.local_rank = local_rank
        self.local_size = local_size


_group = None
_lock = threading.Lock()


def is_available() -> bool:
    """True when the MPI backend can be used: mpi4py is installed (not imported here)."""
    return importlib.util.find_spec("mpi4py") is not None


is_mpi_available = is_available


def _timeout_seconds(timeout) -> float:
    if timeout is None:
        return DEFAULT_TIMEOUT_S
    if isinstance(timeout, datetime.timedelta):
        seconds = timeout.total_seconds()
    elif isinstance(timeout, numbers.Real) and not isinstance(timeout, bool):
        seconds = float(timeout)
    else:
        raise TypeError(f"init_process_group: timeout must be a datetime.timedelta or a "
                        f"number of seconds, got {type(timeout).__name__}")
    if not seconds > 0:
        raise ValueError(f"init_process_group: timeout must be positive, got {seconds} s")
    return seconds


def _import_mpi():
    try:
        from mpi4py import MPI
    except ImportError as exc:
        raise RuntimeError("init_process_group(backend='mpi') needs mpi4py and an MPI "
                           "library: pip install 'tinygrad_cv[dist]' (mpi4py and the mpich "
                           f"wheel), then launch with mpiexec -n N python ... ({exc})") from None
    return MPI


def _join_every_rank_in_mpi_init(timeout_s):
    """Start MPI (mpi4py's import runs MPI_Init) and duplicate COMM_WORLD, so our
    collectives never mix with the user's; returns (MPI, comm, local rank, local size).

    MPI_Init waits for every rank and holds the GIL meanwhile, so no Python timer can
    interrupt it: faulthandler's C-level watchdog ends this rank (status 1, printing
    "Timeout" and this function in the traceback) if the ranks have not all joined within
    the timeout, e.g. because one of them failed before calling init_process_group.
    (It takes over faulthandler's one `dump_traceback_later` timer meanwhile.)
    """
    faulthandler.dump_traceback_later(timeout_s, exit=True)
    try:
        MPI = _import_mpi()
        comm = MPI.COMM_WORLD.Dup()
        local = comm.Split_type(MPI.COMM_TYPE_SHARED, key=comm.Get_rank())
        local_rank, local_size = local.Get_rank(), local.Get_size()
        local.Free()
    finally:
        faulthandler.cancel_dump_traceback_later()
    return MPI, comm, local_rank, local_size


def init_process_group(backend="mpi", init_method=None, timeout=None, world_size=-1, rank=-1,
                       store=None, group_name="", pg_options=None, device_id=None):
    """Open the default process group over MPI (torch's signature; only backend "mpi").

    Launch the script with `mpiexec -n N python script.py`; rank and world size come from
    MPI (as torch's MPI backend), so `world_size`/`rank`, if given, must agree with it.
    `timeout` (a timedelta or seconds, default 300 s) bounds every wait on other ranks:
    a rank that waits longer raises `DistributedTimeoutError` and, being uncaught, aborts
    the job. Opening the group also makes any uncaught exception abort every rank
    (MPI_Abort) instead of leaving the others waiting forever.
    """
    global _group
    if backend is not None and str(backend).lower() != "mpi":
        raise ValueError(f"init_process_group: backend {backend!r} is not supported; "
                         f"tinygrad_cv runs over MPI only (backend='mpi')")
    for name, value in (("init_method", init_method), ("store", store),
                        ("pg_options", pg_options)):
        if value is not None:
            raise ValueError(f"init_process_group: {name} is not used by the MPI backend "
                             f"(MPI's launcher wires the ranks); leave it None")
    seconds = _timeout_seconds(timeout)
    with _lock:
        if _group is not None:
            raise RuntimeError("init_process_group: trying to initialize the default process "
                               "group twice (call destroy_process_group() first)")
        MPI, comm, local_rank, local_size = _join_every_rank_in_mpi_init(seconds)
        for name, given, actual in (("world_size", world_size, comm.Get_size()),
                                    ("rank", rank, comm.Get_rank())):
            if given is not None and given != -1 and int(given) != actual:
                comm.Free()
                raise ValueError(f"init_process_group: {name}={given} but MPI says {actual} "
                                 f"(the launcher, mpiexec -n N, sets rank and world size)")
        _group = _Group(MPI, comm, seconds, local_rank, local_size)
        install_abort_on_uncaught(lambda: _group)


def destroy_process_group(group=None):
    """Close the default process group (torch's name); the rank may open it again."""
    global _group
    if group is not None:
        raise ValueError("destroy_process_group: only the default group exists (group=None)")
    with _lock:
        if _group is None:
            raise ValueError(_NOT_INITIALISED)
        closing, _group = _group, None
        uninstall_abort_on_uncaught()
        closing.comm.Free()


def is_initialized() -> bool:
    """True between `init_process_group` and `destroy_process_group`."""
    return _group is not None


def current_group() -> _Group:
    """The open group, or torch's ValueError when there is none."""
    group = _group
    if group is None:
        raise ValueError(_NOT_INITIALISED)
    return group


def get_backend(group=None) -> str:
    current_group()
    return "mpi"


def get_rank(group=None) -> int:
    """This process's rank in the default group (0 .. world size - 1)."""
    return current_group().rank


def get_world_size(group=None) -> int:
    """The number of ranks in the default group."""
    return current_group().size


def get_local_rank() -> int:
    """This rank's index among the ranks on its own machine (to pick a GPU per rank)."""
    return current_group().local_rank


def get_local_world_size() -> int:
    """How many ranks run on this machine."""
    return current_group().local_size


def is_main_process() -> bool:
    """True on rank 0, or when no process group is open (a plain single process): the
    rank that logs, writes metrics files and saves checkpoints."""
    group = _group
    return group is None or group.rank == 0


def environment_world_size() -> int:
    """The world size the MPI launcher announced in the environment, without importing
    MPI (1 when not launched by mpiexec): lets a launcher decide whether to open a group."""
    for name in ("PMI_SIZE", "OMPI_COMM_WORLD_SIZE"):
        value = os.environ.get(name)
        if value and value.isdigit():
            return int(value)
    return 1

