"""`tc.linalg`: torch.linalg's vector_norm (the part CV model code uses)."""
from .ops.linalg import vector_norm  # noqa: F401

__all__ = ["vector_norm"]
