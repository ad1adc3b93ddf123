"""`evaluate WEIGHTS` (test loss, accuracy and confusion matrix of a weights file) and
`test CONFIG CKPT` (the engine's test metrics of a checkpoint)."""
from __future__ import annotations

import numpy as np

from . import transforms
from .cli_args import apply_threads, require_device
from .cli_data import load_dataset, load_folder
from .cli_weights import model_from_weights
from .data import DataLoader
from .errors import UserError
from .train import DATASET_STATS, evaluate


def cmd_test(args):
    require_device(args.device)
    apply_threads(args)
    from .engine.cli import test_config
    return test_config(args)


def cmd_evaluate(args):
    require_device(args.device)
    apply_threads(args)
    name, model, info = model_from_weights(args.weights, args.model, args.dataset)
    if info.dataset == "folder":
        return _evaluate_folder(args, name, model, info)
    if info.dataset not in DATASET_STATS:
        raise UserError(f"{args.weights}: holds weights for the dataset {info.dataset!r}; "
                        f"evaluate knows {', '.join(sorted(DATASET_STATS))}")
    model.to(args.device)
    test_set = load_dataset(info.dataset, False, args.data_dir,   # no training files needed
                            mean=info.mean, std=info.std)
    classes = info.classes
    result = evaluate(model, DataLoader(test_set, batch_size=args.batch_size), args.device,
                      num_classes=len(classes), mean=info.mean[0], std=info.std[0])
    print(f"{name} on the {info.dataset} test set: loss {result.loss:.4f}, accuracy "
          f"{100 * result.accuracy:.2f}% ({int(np.trace(result.confusion))}/"
          f"{int(result.confusion.sum())})")
    _print_confusion(result, classes)
    return 0


def folder_val_transform(info):
    """The validation transform recorded in folder weights' metadata."""
    resize = info.metadata.get("resize")
    if not isinstance(resize, int) or info.input_size[0] != 3:
        raise UserError(f"folder weights: their metadata has no valid resize/input_size "
                        f"(got {resize!r}, {list(info.input_size)}); re-save them")
    return transforms.Compose([transforms.Resize(resize),
                               transforms.CenterCrop(tuple(info.input_size[1:])),
                               transforms.ToTensor(), transforms.Normalize(info.mean, info.std)])


def _evaluate_folder(args, name, model, info):
    """`evaluate` of folder weights: on the folder's validation split, split as in training
    (the recorded val_fraction and seed)."""
    fraction, seed = info.metadata.get("val_fraction", 0.2), info.metadata.get("seed", 0)
    _, val_set, classes = load_folder(args.data_dir, None, folder_val_transform(info),
                                      fraction, seed)
    if list(classes) != list(info.classes):
        raise UserError(f"--data-dir {args.data_dir}: its classes {list(classes)} differ from "
                        f"those the weights were trained on {info.classes}")
    model.to(args.device)
    result = evaluate(model, DataLoader(val_set, batch_size=args.batch_size), args.device,
                      num_classes=len(classes), mean=info.mean[0], std=info.std[0])
    print(f"{name} on the validation split of {args.data_dir}: loss {result.loss:.4f}, "
          f"accuracy {100 * result.accuracy:.2f}% ({int(np.trace(result.confusion))}/"
          f"{int(result.confusion.sum())})")
    _print_confusion(result, info.classes)
    return 0


def _print_confusion(result, classes):
    print("confusion matrix (rows: true class, columns: predicted):")
    width = max(6, len(str(result.confusion.max())) + 1)
    print(" " * 12 + "".join(f"{c[:width - 1]:>{width}}" for c in classes))
    for label, row in zip(classes, result.confusion):
        print(f"{label[:11]:>11} " + "".join(f"{n:>{width}}" for n in row))
