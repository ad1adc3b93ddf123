"""tinygrad_cv.utils: torch.utils' import paths (`tinygrad_cv.utils.data` is
`tinygrad_cv.data`)."""
import sys

from .. import data
from . import checkpoint  # noqa: F401

sys.modules[__name__ + ".data"] = data

__all__ = ["checkpoint", "data"]
