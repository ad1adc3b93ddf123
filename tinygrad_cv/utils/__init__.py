"""tinygrad_cv.utils: torch.utils' import paths."""
from . import checkpoint  # noqa: F401
