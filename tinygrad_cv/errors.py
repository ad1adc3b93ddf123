"""What the command line and the examples do with a user's mistakes and with signals.

`UserError`: a mistake of the user's (a bad flag, a missing, unreadable or wrong file)
whose message says what is wrong and with what. `run_main(main)` runs a command-line
entry point and turns, in one place,
  - `UserError` and `OSError` (files: missing, unreadable, disk full; the message
    names the path) into one line `error: ...` on stderr and exit status 2;
  - `Interrupted` (SIGINT or SIGTERM, see `tinygrad_cv.train.fit`) and a plain
    Ctrl-C into one line on stderr and exit status 128 + the signal's number
    (130 for SIGINT, 143 for SIGTERM), as a shell reports a process killed by it.
Anything else is a bug and keeps its traceback.
"""
from __future__ import annotations

import contextlib
import signal
import sys


class UserError(Exception):
    """A user's mistake: the CLI prints `error: <message>` and exits with status 2."""


class Interrupted(KeyboardInterrupt):
    """SIGINT or SIGTERM stopped the run. A KeyboardInterrupt, so `except Exception`
    blocks do not swallow it; `message` says what was kept, `exit_status` is 128 + the
    signal's number."""

    def __init__(self, signum, message=None):
        self.signum = int(signum)
        self.message = message or f"interrupted by {signal_name(signum)}"
        super().__init__(self.message)

    @property
    def exit_status(self):
        return 128 + self.signum


def signal_name(signum):
    """'SIGINT' for signal.SIGINT, and so on."""
    try:
        return signal.Signals(signum).name
    except ValueError:
        return f"signal {signum}"


def _raise_interrupted(signum, frame):
    raise Interrupted(signum)


@contextlib.contextmanager
def signals_raise_interrupted(signums=(signal.SIGINT, signal.SIGTERM)):
    """Within the block, each of `signums` raises `Interrupted` (in the main thread).

    A signal the process ignores (SIG_IGN, e.g. under `nohup`) stays ignored; outside
    the main thread (where handlers cannot be set) nothing changes. The previous
    handlers come back on exit.
    """
    import threading

    previous = {}
    if threading.current_thread() is threading.main_thread():
        for signum in signums:
            handler = signal.getsignal(signum)
            if handler is signal.SIG_IGN or handler is None:
                continue
            previous[signum] = handler
            signal.signal(signum, _raise_interrupted)
    try:
        yield
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)


@contextlib.contextmanager
def signals_deferred(signums=(signal.SIGINT, signal.SIGTERM)):
    """Within the block (e.g. while the interrupted run's weights are written), the
    signals are ignored, so a second Ctrl-C cannot cut the save short."""
    import threading

    previous = {}
    if threading.current_thread() is threading.main_thread():
        for signum in signums:
            previous[signum] = signal.getsignal(signum)
            signal.signal(signum, signal.SIG_IGN)
    try:
        yield
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler if handler is not None else signal.SIG_DFL)


def describe_os_error(exc: OSError) -> str:
    """'PATH: No such file or directory' for an OSError with a file name, else its text."""
    if exc.filename is not None and exc.strerror:
        where = exc.filename if exc.filename2 is None else f"{exc.filename} -> {exc.filename2}"
        return f"{where}: {exc.strerror}"
    return str(exc) or type(exc).__name__


def run_main(main, argv=None) -> int:
    """Run `main(argv)` (an entry point returning an exit status or None) with the rules
    of this module's docstring; returns the exit status."""
    try:
        with signals_raise_interrupted((signal.SIGTERM,)):
            status = main(argv)
    except UserError as exc:
        _print_line(f"error: {exc}")
        return 2
    except OSError as exc:
        _print_line(f"error: {describe_os_error(exc)}")
        return 2
    except Interrupted as exc:
        _print_line(exc.message)
        return exc.exit_status
    except KeyboardInterrupt:
        _print_line("interrupted by SIGINT")
        return 128 + signal.SIGINT
    return 0 if status is None else status


def _print_line(text):
    sys.stdout.flush()
    print(text, file=sys.stderr, flush=True)
