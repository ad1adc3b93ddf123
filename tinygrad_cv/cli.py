"""Command line: `python -m tinygrad_cv train | evaluate | predict` (also `tinygrad-cv`).

    train     train a model on MNIST or Fashion-MNIST, optionally saving weights and an
              HTML report
    evaluate  a weights file -> test loss, accuracy and confusion matrix
    predict   a weights file + image files -> the class and probabilities of each image
"""
from __future__ import annotations

import argparse
import sys
import time

import numpy as np

from . import models, serialization, transforms
from .autograd import no_grad
from .data import DataLoader, Subset
from .datasets import MNIST, FashionMNIST
from .random import manual_seed
from .train import CLASS_NAMES, DATASET_STATS, build_optimizer, evaluate, fit

DEFAULT_LR = {"adadelta": 1.0, "sgd": 0.01, "adam": 1e-3, "adamw": 1e-3}


def load_dataset(name, train, data_dir=None, download=True):
    """The train or test split of `name`, normalised with that dataset's mean and std."""
    mean, std = DATASET_STATS[name]
    transform = transforms.Compose([transforms.ToTensor(), transforms.Normalize(mean, std)])
    cls = MNIST if name == "mnist" else FashionMNIST
    return cls(root=data_dir, train=train, download=download, transform=transform)


def load_datasets(name, data_dir=None, download=True):
    """(train, test) datasets of `name` (see `load_dataset`)."""
    return (load_dataset(name, True, data_dir, download),
            load_dataset(name, False, data_dir, download))


def model_from_weights(path, model_name=None):
    """Load a weights file into the named model, or into the first model whose state
    dict it fits exactly when no name is given."""
    state = serialization.load(path)
    names = [model_name] if model_name else list(models.MODELS)
    errors = []
    for name in names:
        model = models.MODELS[name]()
        try:
            model.load_state_dict(state)
        except (RuntimeError, KeyError, ValueError) as exc:
            errors.append(f"{name}: {str(exc).splitlines()[0]}")
            continue
        return name, model
    raise SystemExit(f"{path}: the weights fit none of the models tried:\n  " + "\n  ".join(errors))


def cmd_train(args):
    manual_seed(args.seed)
    train_set, test_set = load_datasets(args.dataset, args.data_dir)
    if args.limit:
        train_set = Subset(train_set, np.arange(min(args.limit, len(train_set))))
        test_set = Subset(test_set, np.arange(min(args.limit, len(test_set))))
    train_loader = DataLoader(train_set, batch_size=args.batch_size, shuffle=True, seed=args.seed)
    test_loader = DataLoader(test_set, batch_size=args.test_batch_size)
    model = models.MODELS[args.model]().to(args.device)
    lr = args.lr if args.lr is not None else DEFAULT_LR[args.optimizer]
    optimizer = build_optimizer(args.optimizer, model.parameters(), lr)
    from .optim.lr_scheduler import StepLR
    scheduler = StepLR(optimizer, step_size=1, gamma=args.gamma)
    mean, std = DATASET_STATS[args.dataset]
    print(f"training {args.model} on {args.dataset} ({len(train_set)} train / {len(test_set)} "
          f"test images), {args.optimizer} lr={lr}, batch {args.batch_size}, {args.epochs} "
          f"epoch(s), device {args.device}")
    start = time.perf_counter()
    history, last = fit(model, train_loader, test_loader, optimizer, args.epochs, scheduler,
                        args.device, progress=not args.no_progress, mean=mean[0], std=std[0])
    print(f"done in {time.perf_counter() - start:.1f} s: test accuracy "
          f"{100 * last.accuracy:.2f}%")
    if args.save:
        serialization.save(model.state_dict(), args.save)
        print(f"weights saved to {args.save}")
    if args.report:
        from .report import write_report
        path = write_report(args.report, history, last, model, CLASS_NAMES[args.dataset],
                            title=f"{args.model} on {args.dataset}",
                            details={**{k: v for k, v in vars(args).items() if k != "func"},
                                     "lr": lr})
        print(f"report written to {path}")
    return 0


def cmd_evaluate(args):
    name, model = model_from_weights(args.weights, args.model)
    model.to(args.device)
    test_set = load_dataset(args.dataset, False, args.data_dir)   # no training files needed
    mean, std = DATASET_STATS[args.dataset]
    result = evaluate(model, DataLoader(test_set, batch_size=args.batch_size), args.device,
                      mean=mean[0], std=std[0])
    classes = CLASS_NAMES[args.dataset]
    print(f"{name} on the {args.dataset} test set: loss {result.loss:.4f}, accuracy "
          f"{100 * result.accuracy:.2f}% ({int(np.trace(result.confusion))}/"
          f"{int(result.confusion.sum())})")
    print("confusion matrix (rows: true class, columns: predicted):")
    width = max(6, len(str(result.confusion.max())) + 1)
    print(" " * 12 + "".join(f"{c[:width - 1]:>{width}}" for c in classes))
    for label, row in zip(classes, result.confusion):
        print(f"{label[:11]:>11} " + "".join(f"{n:>{width}}" for n in row))
    return 0


def load_image(path, size=28):
    """An image file as a (size, size) float array in [0, 1], white digit on black.

    Any format Pillow reads; colour is converted to grayscale, and a light background
    (the usual photo or scan of dark ink on paper) is inverted to MNIST's convention.
    """
    from PIL import Image
    with Image.open(path) as img:
        gray = img.convert("L").resize((size, size), Image.BILINEAR)
    pixels = np.asarray(gray, dtype=np.float32) / 255.0
    if pixels.mean() > 0.5:
        pixels = 1.0 - pixels
    return pixels


def cmd_predict(args):
    name, model = model_from_weights(args.weights, args.model)
    model.to(args.device).eval()
    mean, std = DATASET_STATS[args.dataset]
    classes = CLASS_NAMES[args.dataset]
    batch = np.stack([load_image(p) for p in args.images])[:, None]
    from .tensor import Tensor
    with no_grad():
        logits = model(Tensor((batch - mean[0]) / std[0], device=args.device))
        probs = logits.softmax(dim=1).numpy()
    for path, p in zip(args.images, probs):
        top = int(p.argmax())
        ranked = np.argsort(p)[::-1][:3]
        others = ", ".join(f"{classes[k]} {100 * p[k]:.1f}%" for k in ranked)
        print(f"{path}: {classes[top]} ({100 * p[top]:.1f}%)  [{others}]")
    return 0


def build_parser():
    parser = argparse.ArgumentParser(prog="python -m tinygrad_cv", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)

    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--dataset", choices=sorted(DATASET_STATS), default="mnist")
    common.add_argument("--data-dir", default=None,
                        help="folder with the IDX .gz files (default: $TINYGRAD_CV_DATA, "
                             "then ~/.cache/tinygrad_cv, downloading if missing)")
    common.add_argument("--device", default="cpu", help="cpu or cuda")

    t = sub.add_parser("train", parents=[common], help="train a model")
    t.add_argument("--model", choices=sorted(models.MODELS), default="mnist_cnn")
    t.add_argument("--epochs", type=int, default=1)
    t.add_argument("--batch-size", type=int, default=64)
    t.add_argument("--test-batch-size", type=int, default=1000)
    t.add_argument("--optimizer", choices=sorted(DEFAULT_LR), default="adadelta")
    t.add_argument("--lr", type=float, default=None,
                   help="learning rate (default: 1.0 adadelta, 0.01 sgd, 1e-3 adam/adamw)")
    t.add_argument("--gamma", type=float, default=0.7, help="StepLR decay per epoch")
    t.add_argument("--seed", type=int, default=1)
    t.add_argument("--limit", type=int, default=0,
                   help="use only the first N train and test images (quick tries)")
    t.add_argument("--save", metavar="PATH", help="write the weights (safetensors) here")
    t.add_argument("--report", metavar="DIR", help="write an HTML report into DIR")
    t.add_argument("--no-progress", action="store_true", help="no progress bar")
    t.set_defaults(func=cmd_train)

    e = sub.add_parser("evaluate", parents=[common], help="test accuracy of saved weights")
    e.add_argument("weights")
    e.add_argument("--model", choices=sorted(models.MODELS), default=None,
                   help="default: the model the weights fit")
    e.add_argument("--batch-size", type=int, default=1000)
    e.set_defaults(func=cmd_evaluate)

    p = sub.add_parser("predict", parents=[common], help="classify image files")
    p.add_argument("weights")
    p.add_argument("images", nargs="+")
    p.add_argument("--model", choices=sorted(models.MODELS), default=None,
                   help="default: the model the weights fit")
    p.set_defaults(func=cmd_predict)
    return parser


def main(argv=None):
    args = build_parser().parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
