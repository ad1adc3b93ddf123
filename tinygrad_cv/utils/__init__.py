"""PyTorch's `torch.utils` paths: `tinygrad_cv.utils.data` is `tinygrad_cv.data`."""
import sys

from .. import data

sys.modules[__name__ + ".data"] = data

__all__ = ["data"]
