"""tinygrad_cv.onnx: export a model to ONNX (`export`, as `torch.onnx.export`).

Needs the optional extra `onnx` (pip install 'tinygrad_cv[onnx]'); the onnx package is
imported only when `export` runs, never by importing tinygrad_cv.
"""
from .export import export
from .trace import ExportError

__all__ = ["export", "ExportError"]
