"""argparse pieces the command line and the examples share.

Numbers are checked when the command line is parsed (`--epochs 0`, `--limit -5`,
`--lr nan` are usage errors, exit status 2, before anything runs); `--device` is
checked for its form there and for availability when the command starts
(`require_device`); `--threads`, `--version`, a help formatter that shows every
option's default, and a parser whose usage errors are one line.
"""
from __future__ import annotations

import argparse
import math

from .errors import UserError


class HelpFormatter(argparse.ArgumentDefaultsHelpFormatter, argparse.RawDescriptionHelpFormatter):
    """Shows each option's default after its help text, and descriptions as written.

    Defaults of None and False (an option not given, a flag not set) are left out: the
    help text of such an option says what happens without it."""

    def _get_help_string(self, action):
        if action.default is None or action.default is False:
            return action.help
        return super()._get_help_string(action)


class ArgumentParser(argparse.ArgumentParser):
    """argparse's parser with `HelpFormatter` by default and a usage error printed as one
    line, `error: ...` (exit status 2, as argparse), instead of the whole usage first."""

    def __init__(self, *args, formatter_class=HelpFormatter, **kwargs):
        super().__init__(*args, formatter_class=formatter_class, **kwargs)

    def error(self, message):
        self.exit(2, f"error: {message} (see {self.prog} --help)\n")


def _number(text, convert, kind):
    try:
        value = convert(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected {kind}, got {text!r}") from None
    if isinstance(value, float) and not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"expected {kind}, got {text!r}")
    return value


def positive_int(text):
    """An int >= 1 (epochs, batch sizes, --limit, --threads)."""
    value = _number(text, int, "a positive integer")
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}")
    return value


def non_negative_int(text):
    """An int >= 0 (seeds, intervals where 0 means off)."""
    value = _number(text, int, "an integer >= 0")
    if value < 0:
        raise argparse.ArgumentTypeError(f"expected an integer >= 0, got {text!r}")
    return value


def positive_float(text):
    """A finite float > 0 (learning rates, decay factors)."""
    value = _number(text, float, "a positive number")
    if value <= 0:
        raise argparse.ArgumentTypeError(f"expected a positive number, got {text!r}")
    return value


def non_negative_float(text):
    """A finite float >= 0 (momentum, weight decay)."""
    value = _number(text, float, "a number >= 0")
    if value < 0:
        raise argparse.ArgumentTypeError(f"expected a number >= 0, got {text!r}")
    return value


def digit(text):
    """An int from 0 to 9 (an MNIST class)."""
    value = _number(text, int, "a digit 0-9")
    if not 0 <= value <= 9:
        raise argparse.ArgumentTypeError(f"expected a digit 0-9, got {text!r}")
    return value


def device_name(text):
    """A device string of the right form ('cpu', 'cuda', 'cuda:N'), made canonical."""
    from .backend import canonical_device
    try:
        return canonical_device(text)
    except (TypeError, ValueError):
        raise argparse.ArgumentTypeError(
            f"unknown device {text!r}; expected cpu, cuda or cuda:N") from None


def require_device(device):
    """Raise UserError when `device` cannot be used here (cuda without CuPy or a GPU)."""
    if device == "cpu":
        return
    from .backend import _import_cupy
    try:
        cupy = _import_cupy()
    except RuntimeError as exc:
        raise UserError(f"--device {device}: {exc}") from None
    index = int(device.split(":")[1])
    count = cupy.cuda.runtime.getDeviceCount()
    if index >= count:
        raise UserError(f"--device {device}: there are only {count} CUDA device(s) here "
                        f"(cuda:0 to cuda:{count - 1})")


def version_string():
    """'tinygrad_cv <version>', the version of the package that runs (its __version__)."""
    from . import __version__
    return f"tinygrad_cv {__version__}"


def add_version(parser):
    parser.add_argument("--version", action="version", version=version_string(),
                        help="print the version and exit")


def add_device(parser, default="cpu"):
    parser.add_argument("--device", type=device_name, default=default,
                        help="cpu, cuda or cuda:N (cuda needs CuPy and an NVIDIA GPU)")


def add_threads(parser):
    parser.add_argument("--threads", type=positive_int, default=None, metavar="N",
                        help="CPU threads for the kernels and BLAS, as torch.set_num_threads "
                             "(default: one per core)")


def apply_threads(args):
    """Call tc.set_num_threads(args.threads) when --threads was given."""
    if getattr(args, "threads", None):
        from .threads import set_num_threads
        set_num_threads(args.threads)
