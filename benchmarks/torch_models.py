"""PyTorch twins of tinygrad_cv.models, built from the very same source text.

Each model module of `tinygrad_cv/models/` is read and run with its imports changed to
PyTorch's (`from .. import nn` -> `from torch import nn`, ...), which is all a user
porting the model would change; nothing else is rewritten. So both frameworks run the
same architecture, layer names and forward code. Needs PyTorch only to build a twin.
"""
from __future__ import annotations

import os
import types

IMPORTS = {
    "from .. import flatten, nn\n": "from torch import flatten, nn\n",
    "from .. import nn\n": "from torch import nn\n",
    "from ..nn import functional as F\n": "from torch.nn import functional as F\n",
}
"""Our import lines and PyTorch's; the only text that differs between the twins."""

MODULES = {"mlp": ("mlp", "MLP"), "lenet5": ("lenet", "LeNet5"),
           "mnist_cnn": ("mnist_cnn", "MnistCNN"), "resnet20": ("resnet", "ResNet20"),
           "mobilenet_v2": ("mobilenet", "MobileNetV2"), "vgg11_bn": ("vgg", "VGG11BN")}
"""Command-line name -> (module file in tinygrad_cv/models, class name)."""

CIFAR_MODELS = ("resnet20", "mobilenet_v2", "vgg11_bn")
"""The models that take 3x32x32 (CIFAR) images; the others take 1x28x28 (MNIST)."""

_MODELS_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), os.pardir,
                           "tinygrad_cv", "models")


def torch_source(module_file):
    """The source text of tinygrad_cv/models/<module_file>.py with PyTorch's imports."""
    with open(os.path.join(_MODELS_DIR, module_file + ".py"), encoding="utf-8") as f:
        source = f.read()
    relative = [line for line in source.splitlines() if line.startswith("from ..")]
    for line in relative:
        if line + "\n" not in IMPORTS:
            raise ValueError(f"{module_file}.py: no PyTorch twin for import {line!r}")
        source = source.replace(line + "\n", IMPORTS[line + "\n"])
    return source


def torch_module(module_file):
    """The model module, run against PyTorch."""
    module = types.ModuleType(f"torch_twin_{module_file}")
    path = os.path.join(_MODELS_DIR, module_file + ".py")
    exec(compile(torch_source(module_file), path, "exec"), module.__dict__)  # noqa: S102
    return module


def build(name):
    """A freshly initialised PyTorch model by its command-line name."""
    module_file, class_name = MODULES[name]
    return getattr(torch_module(module_file), class_name)()
