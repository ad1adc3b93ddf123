"""Train a small CNN on your own images: one sub-folder of images per class.

Written as a PyTorch user writes it (ImageFolder + transforms + DataLoader + a plain
training loop); only the imports differ.

    data/                  either a folder of class folders (a random --val-fraction
      cat/ 001.jpg ...     of it is held out for validation), or train/ and val/
      dog/ 002.png ...     folders that each hold the class folders

    python examples/train_folder.py --data-dir data --epochs 10
    python examples/train_folder.py --demo /tmp/shapes --epochs 3    # generated images

Images are resized to --image-size, augmented with random crops and flips for training,
normalised with the ImageNet statistics; the weights are saved with the class names,
input size and normalisation in the file's metadata.
"""
import argparse
import os
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

import numpy as np                                                 # noqa: E402

import tinygrad_cv as tc                                           # noqa: E402
from tinygrad_cv import optim                                      # noqa: E402
from tinygrad_cv import transforms as T                            # noqa: E402
from tinygrad_cv.datasets import ImageFolder                       # noqa: E402
from tinygrad_cv.models import SmallCNN                            # noqa: E402
from tinygrad_cv.nn import functional as F                         # noqa: E402
from tinygrad_cv.utils.data import DataLoader, Subset             # noqa: E402

MEAN, STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)


def make_datasets(root, image_size, val_fraction, seed):
    """(train, val, classes): train/ and val/ subfolders if present, else a split."""
    train_tf = T.Compose([T.Resize(image_size), T.RandomCrop(image_size, pad_if_needed=True),
                          T.RandomHorizontalFlip(), T.ToTensor(), T.Normalize(MEAN, STD)])
    val_tf = T.Compose([T.Resize(image_size), T.CenterCrop(image_size), T.ToTensor(),
                        T.Normalize(MEAN, STD)])
    if os.path.isdir(os.path.join(root, "train")) and os.path.isdir(os.path.join(root, "val")):
        train = ImageFolder(os.path.join(root, "train"), transform=train_tf)
        val = ImageFolder(os.path.join(root, "val"), transform=val_tf)
        if val.classes != train.classes:
            sys.exit(f"error: {root}/train and {root}/val have different class folders")
        return train, val, train.classes
    # one folder: the same files under two transforms, split by a seeded permutation
    augmented, plain = ImageFolder(root, transform=train_tf), ImageFolder(root, transform=val_tf)
    order = np.random.default_rng(seed).permutation(len(plain))
    n_val = max(1, int(round(val_fraction * len(plain))))
    return Subset(augmented, order[n_val:]), Subset(plain, order[:n_val]), plain.classes


def write_demo(root, per_class=24, size=48, seed=0):
    """A generated folder: bright squares, circles and stripes on noise, as PNG/JPEG."""
    from PIL import Image, ImageDraw
    rng = np.random.default_rng(seed)
    for name in ("circle", "square", "stripes"):
        os.makedirs(os.path.join(root, name), exist_ok=True)
        for k in range(per_class):
            img = Image.fromarray(rng.integers(0, 80, (size, size, 3), dtype=np.uint8))
            draw = ImageDraw.Draw(img)
            a, b = sorted(rng.integers(4, size - 4, 2))
            b = max(b, a + 10)
            colour = tuple(int(c) for c in rng.integers(150, 256, 3))
            if name == "circle":
                draw.ellipse([a, a, b, b], fill=colour)
            elif name == "square":
                draw.rectangle([a, a, b, b], fill=colour)
            else:
                for x in range(0, size, 8):
                    draw.rectangle([x, 0, x + 3, size], fill=colour)
            img.save(os.path.join(root, name, f"{k}.{'png' if k % 2 else 'jpg'}"))


def evaluate(model, loader, device):
    model.eval()
    correct = total = 0
    with tc.no_grad():
        for images, labels in loader:
            logits = model(images.to(device))
            correct += int((logits.argmax(1).cpu().numpy() == labels.numpy()).sum())
            total += len(labels)
    return correct / max(total, 1)


def main(argv=None):
    parser = argparse.ArgumentParser(description="Train a small CNN on a folder of images")
    parser.add_argument("--data-dir", help="folder of class folders, or of train/ and val/")
    parser.add_argument("--demo", metavar="DIR", help="generate a demo folder in DIR and "
                        "train on it")
    parser.add_argument("--image-size", type=int, default=64)
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--val-fraction", type=float, default=0.2)
    parser.add_argument("--workers", type=int, default=2,
                        help="worker processes decoding images (0: in this process)")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--save", metavar="FILE", help="save the weights (.safetensors)")
    args = parser.parse_args(argv)
    if not args.data_dir and not args.demo:
        parser.error("give --data-dir PATH (or --demo DIR for generated images)")
    root = args.data_dir
    if args.demo:
        write_demo(args.demo)
        root = args.demo

    tc.manual_seed(args.seed)
    train_set, val_set, classes = make_datasets(root, args.image_size, args.val_fraction,
                                                args.seed)
    print(f"{len(train_set)} training and {len(val_set)} validation images, classes {classes}")
    train_loader = DataLoader(train_set, batch_size=args.batch_size, shuffle=True,
                              num_workers=args.workers, persistent_workers=args.workers > 0,
                              seed=args.seed)
    val_loader = DataLoader(val_set, batch_size=args.batch_size, num_workers=args.workers,
                            persistent_workers=args.workers > 0)

    model = SmallCNN(len(classes)).to(args.device)
    optimizer = optim.Adam(model.parameters(), lr=args.lr)
    for epoch in range(1, args.epochs + 1):
        model.train()
        start, seen, loss_sum = time.perf_counter(), 0, 0.0
        for images, labels in train_loader:
            images, labels = images.to(args.device), labels.to(args.device)
            optimizer.zero_grad()
            loss = F.cross_entropy(model(images), labels)
            loss.backward()
            optimizer.step()
            loss_sum += loss.item() * len(labels)
            seen += len(labels)
        accuracy = evaluate(model, val_loader, args.device)
        print(f"epoch {epoch}: train loss {loss_sum / seen:.4f}, val accuracy "
              f"{100 * accuracy:.1f}% ({time.perf_counter() - start:.1f} s)")
    if args.save:
        size = args.image_size       # the metadata `python -m tinygrad_cv predict` reads
        metadata = {"model": "small_cnn", "dataset": "folder",
                    "model_args": {"num_classes": len(classes), "in_channels": 3},
                    "classes": list(classes), "input_size": [3, size, size], "resize": size,
                    "normalize": {"mean": list(MEAN), "std": list(STD)},
                    "val_fraction": args.val_fraction, "seed": args.seed}
        tc.save(model.state_dict(), args.save, metadata=metadata)
        print(f"saved {args.save}")
    return accuracy


if __name__ == "__main__":
    main()
