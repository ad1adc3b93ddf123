"""The Dataset protocol of the in-memory image datasets (MNIST, Fashion-MNIST, CIFAR):
`ds[i]` as torchvision (a PIL image and an int, through the transforms) and `get_batch`,
the loaders' one-fancy-index path (a whole batch transformed at once when the transform
supports batches)."""
from __future__ import annotations

import numpy as np

from ..backend import device_of_array
from ..data.collate import default_collate
from ..data.dataset import Dataset
from ..tensor import Tensor, wrap_array
from ..transforms import supports_batches


def pil_image(array):
    """A PIL image of a uint8 HxW (grayscale) or HxWx3 (RGB) array; the array itself when
    Pillow is missing."""
    try:
        from PIL import Image
    except ImportError:
        return array
    return Image.fromarray(array)


class InMemoryImageDataset(Dataset):
    """Subclasses set `_images` (uint8, N x H x W or N x H x W x 3), `_labels` (int64),
    `train`, `classes`, `transform` and `target_transform`."""

    @property
    def split(self) -> str:
        return "train" if self.train else "test"

    @property
    def class_to_idx(self):
        return {name: i for i, name in enumerate(self.classes)}

    def __len__(self):
        return len(self._labels)

    def __getitem__(self, index):
        image = pil_image(self._images[index])
        label = int(self._labels[index])
        if self.transform is not None:
            image = self.transform(image)
        if self.target_transform is not None:
            label = self.target_transform(label)
        return image, label

    def get_batch(self, indices):
        """`[images, labels]` for `indices`, one fancy index each."""
        indices = np.asarray(indices, dtype=np.int64)
        images = self._images[indices]
        if self.transform is None:
            image_batch = wrap_array(images, "cpu")
        elif supports_batches(self.transform):
            image_batch = self.transform.apply_batch(images)
            if not isinstance(image_batch, Tensor):
                image_batch = wrap_array(image_batch, device_of_array(image_batch))
        else:
            image_batch = default_collate([self.transform(pil_image(im)) for im in images])
        labels = self._labels[indices]
        if self.target_transform is None:
            label_batch = wrap_array(labels, "cpu")
        else:
            label_batch = default_collate([self.target_transform(int(y)) for y in labels])
        return [image_batch, label_batch]
