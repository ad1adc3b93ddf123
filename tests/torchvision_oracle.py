"""torchvision as a test oracle, when it can be imported beside the CPU build of torch.

The torchvision wheel these machines get is a CUDA build: with the CPU torch its C++
operators do not load and `import torchvision` fails with "operator torchvision::nms
does not exist" (its fake-tensor registrations need the operators to be declared).
Declaring the two schemas it registers fakes for lets the pure-Python transforms and
datasets import; nothing here ever runs a torchvision C++ operator. Tests that need it
use `requires_torchvision`; without torchvision (or torch) they skip.
"""
from __future__ import annotations

import pytest

torchvision = None
tv_transforms = None
tv_functional = None
_library = None     # kept alive: dropping the Library object would undo the definitions

try:
    import torch

    try:
        import torchvision               # noqa: F811  (works where the C++ ops load)
    except RuntimeError:
        _library = torch.library.Library("torchvision", "DEF")
        for schema in ("nms(Tensor dets, Tensor scores, float iou_threshold) -> Tensor",
                       "qnms(Tensor dets, Tensor scores, float iou_threshold) -> Tensor"):
            _library.define(schema)
        import torchvision               # noqa: F811
    import torchvision.transforms as tv_transforms
    import torchvision.transforms.functional as tv_functional
except Exception:   # noqa: BLE001  (any failure: the oracle is unavailable, tests skip)
    torchvision = tv_transforms = tv_functional = None

requires_torchvision = pytest.mark.skipif(
    tv_transforms is None, reason="torchvision (0.28, the oracle) cannot be imported "
    "(pip install --no-deps torchvision==0.28.0)")
