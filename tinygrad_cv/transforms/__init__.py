"""Image transforms with torchvision's names and parameters.

Each transform works on one image (`t(img)`, torchvision's semantics: a PIL image or a
tensor image (..., C, H, W)) and, through `t.apply_batch(batch)`, on a whole batch whose
first dimension is the sample index, each sample drawing its own random parameters. An
in-memory dataset applies its transform once per batch when `supports_batches(t)` holds,
which is what makes the DataLoader fast; any other callable still works per sample.
Random transforms draw from the generator that `tc.manual_seed` seeds (so their draws
follow torchvision's distributions, not its exact random numbers).
"""
from . import array_ops, functional
from ._base import (Compose, ConvertImageDtype, InterpolationMode, Lambda, Normalize,
                    PILToTensor, RandomApply, RandomChoice, RandomOrder, ToPILImage, ToTensor,
                    Transform, supports_batches)
from .color import ColorJitter, Grayscale, RandomErasing, RandomGrayscale
from .geometric import (CenterCrop, Pad, RandomCrop, RandomHorizontalFlip,
                        RandomResizedCrop, RandomRotation, RandomVerticalFlip, Resize)

__all__ = ["Compose", "ToTensor", "PILToTensor", "ConvertImageDtype", "Normalize", "Lambda",
           "Resize", "CenterCrop", "Pad", "RandomCrop", "RandomHorizontalFlip",
           "RandomVerticalFlip", "RandomResizedCrop", "RandomRotation", "ColorJitter",
           "Grayscale", "RandomErasing", "RandomGrayscale", "RandomApply", "RandomChoice",
           "RandomOrder", "ToPILImage", "InterpolationMode", "Transform",
           "supports_batches", "functional", "array_ops"]
