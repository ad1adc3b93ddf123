"""Command line: `python -m tinygrad_cv train | test | evaluate | predict | export` (also
`tinygrad-cv`).

    train     train a model on MNIST or Fashion-MNIST, optionally saving weights and an
              HTML report; `train CONFIG` trains a config file with the engine
    test      a config + a checkpoint -> its test metrics
    evaluate  a weights file -> test loss, accuracy and confusion matrix
    predict   a weights file (or, with --onnx, an exported model) + image files -> the
              class and probabilities of each image
    export    a weights file -> an ONNX model (with the weights' metadata), checked by
              running it in onnxruntime

A user's mistake (a missing or wrong file, an unknown device, weights of another
dataset) is one line `error: ...` and exit status 2; Ctrl-C or SIGTERM during `train`
saves the best weights so far and exits with 130 or 143 (see tinygrad_cv/errors.py).
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time
from dataclasses import dataclass

import numpy as np

from . import models, serialization, transforms
from .autograd import no_grad
from .cli_args import (ArgumentParser, add_device, add_threads, add_version, apply_threads,
                       non_negative_int, positive_float, positive_int, require_device)
from .data import DataLoader, Subset
from .datasets import MNIST, FashionMNIST, ImageFileError, image_folder_splits, pil_loader
from .errors import UserError, run_main
from .image_input import load_image
from .random import manual_seed
from .train import (CLASS_NAMES, DATASET_STATS, INPUT_SIZE, PREPROCESS, build_optimizer,
                    evaluate, fit, weights_metadata)

IMAGENET_MEAN, IMAGENET_STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)
DEFAULT_LR = {"adadelta": 1.0, "sgd": 0.01, "adam": 1e-3, "adamw": 1e-3}

__all__ = ["main", "build_parser", "load_image", "model_from_weights", "WeightsInfo"]


# ----------------------------------------------------------------------------- data
def load_dataset(name, train, data_dir=None, download=True, mean=None, std=None):
    """The train or test split of `name`, normalised with `mean`/`std` (default: that
    dataset's). A corrupt or wrong data file is a UserError naming it."""
    default_mean, default_std = DATASET_STATS[name]
    transform = transforms.Compose([transforms.ToTensor(), transforms.Normalize(
        default_mean if mean is None else mean, default_std if std is None else std)])
    cls = MNIST if name == "mnist" else FashionMNIST
    try:
        return cls(root=data_dir, train=train, download=download, transform=transform)
    except ValueError as exc:   # IDXFormatError, ChecksumError: each names the file
        raise UserError(str(exc)) from None


def folder_transforms(size, mean=IMAGENET_MEAN, std=IMAGENET_STD):
    """(training, validation) transforms of `train --dataset folder`: resize, then a random
    crop and flip for training or a centre crop for validation, then normalise."""
    train_tf = transforms.Compose([
        transforms.Resize(size), transforms.RandomCrop(size, pad_if_needed=True),
        transforms.RandomHorizontalFlip(), transforms.ToTensor(),
        transforms.Normalize(mean, std)])
    val_tf = transforms.Compose([transforms.Resize(size), transforms.CenterCrop(size),
                                 transforms.ToTensor(), transforms.Normalize(mean, std)])
    return train_tf, val_tf


def load_folder(data_dir, train_tf, val_tf, val_fraction, seed):
    """(train, val, classes) of an image folder (`datasets.image_folder_splits`); a missing
    folder, one with no class folders or too few images is a UserError."""
    if not data_dir:
        raise UserError("--dataset folder needs --data-dir PATH (a folder of class folders, "
                        "or of train/ and val/)")
    if not os.path.isdir(data_dir):
        raise UserError(f"--data-dir {data_dir}: no such folder")
    try:
        return image_folder_splits(data_dir, train_tf, val_tf, val_fraction, seed)
    except (FileNotFoundError, ValueError) as exc:
        raise UserError(str(exc).splitlines()[0]) from None


def load_datasets(name, data_dir=None, download=True):
    """(train, test) datasets of `name` (see `load_dataset`)."""
    return (load_dataset(name, True, data_dir, download),
            load_dataset(name, False, data_dir, download))


# ----------------------------------------------------------------------------- weights
@dataclass
class WeightsInfo:
    """How to use a weights file: from its metadata, or (older files) from the flags."""
    model: str
    dataset: str
    classes: list
    mean: tuple
    std: tuple
    preprocess: dict
    input_size: tuple = INPUT_SIZE
    recorded: bool = True        # False: the file had no metadata
    metadata: dict = None        # the file's whole metadata (folder weights: resize, seed...)


def read_weights(path):
    """(state dict, metadata dict) of a weights file; UserError when it is not one."""
    try:
        state = serialization.load(path)
        metadata = serialization.load_metadata(path)
    except (ValueError, TypeError) as exc:   # not safetensors, a pickle, bad metadata
        reason = str(exc).splitlines()[0]
        if reason.startswith("load: "):
            reason = reason[len("load: "):]
        if str(path) not in reason:
            reason = f"{path}: {reason}"
        raise UserError(reason) from None
    if not isinstance(state, dict) or not state or not all(
            isinstance(k, str) and hasattr(v, "shape") for k, v in state.items()):
        raise UserError(f"{path}: holds no model weights (a state dict of tensors was "
                        "expected; is it an optimizer state or another saved object?)")
    return state, metadata


def _recorded_info(path, metadata):
    """A WeightsInfo from a file's metadata, each field checked."""
    def field(key, kind):
        value = metadata.get(key)
        if not isinstance(value, kind):
            raise UserError(f"{path}: its metadata has no valid {key!r} "
                            f"(got {value!r}); re-save the weights")
        return value
    model = field("model", str)
    if model not in models.MODELS:
        raise UserError(f"{path}: holds weights of model {model!r}, which this version does "
                        f"not know (it knows {', '.join(sorted(models.MODELS))})")
    dataset = field("dataset", str)
    classes = field("classes", list)
    normalize = field("normalize", dict)
    mean, std = normalize.get("mean"), normalize.get("std")
    if not (isinstance(mean, list) and isinstance(std, list) and mean and std
            and all(isinstance(v, (int, float)) for v in mean + std)
            and all(v > 0 for v in std)):
        raise UserError(f"{path}: its metadata has no valid normalisation (got {normalize!r})")
    preprocess = metadata.get("preprocess") or PREPROCESS.get(dataset, PREPROCESS["mnist"])
    size = metadata.get("input_size", list(INPUT_SIZE))
    if not (isinstance(size, list) and len(size) == 3 and all(isinstance(v, int) for v in size)):
        raise UserError(f"{path}: its metadata has no valid input_size (got {size!r})")
    return WeightsInfo(model, dataset, [str(c) for c in classes], tuple(mean), tuple(std),
                       dict(preprocess), tuple(size), metadata=dict(metadata))


def _build_model(path, name, model_args, state):
    """models.MODELS[name](**model_args) with `state` loaded, or a UserError saying why not."""
    try:
        model = models.MODELS[name](**model_args)
    except TypeError as exc:
        raise UserError(f"{path}: cannot build model {name} with the recorded arguments "
                        f"{model_args} ({exc})") from None
    try:
        model.load_state_dict(state)
    except (RuntimeError, KeyError, ValueError) as exc:
        raise UserError(f"{path}: the weights do not fit model {name} "
                        f"({str(exc).splitlines()[0]})") from None
    return model


def model_from_weights(path, model_name=None, dataset=None):
    """(model name, model with the weights loaded, WeightsInfo) of a weights file.

    With metadata (files `train` and the examples write): the recorded model, arguments,
    dataset, classes and normalisation; a `model_name` or `dataset` that differs from
    the recorded one is a UserError. Without (older files): the named model, or the
    first whose state dict the weights fit exactly, and `dataset` (default mnist); a
    note on stderr says so.
    """
    state, metadata = read_weights(path)
    if metadata:
        info = _recorded_info(path, metadata)
        if model_name and model_name != info.model:
            raise UserError(f"{path}: holds {info.model} weights, but --model {model_name} "
                            "was given")
        if dataset and dataset != info.dataset:
            raise UserError(f"{path}: holds weights trained on {info.dataset}, but "
                            f"--dataset {dataset} was given (leave --dataset out to use "
                            "the recorded one)")
        model_args = metadata.get("model_args") or {}
        if not isinstance(model_args, dict):
            raise UserError(f"{path}: its metadata's model_args is not a dict ({model_args!r})")
        return info.model, _build_model(path, info.model, model_args, state), info

    dataset = dataset or "mnist"
    names = [model_name] if model_name else list(models.MNIST_MODELS)
    if model_name and model_name not in models.MNIST_MODELS:
        raise UserError(f"{path}: has no tinygrad_cv metadata, which {model_name} weights "
                        "need (its number of classes and input); re-save them with train")
    errors = []
    for name in names:
        model = models.MODELS[name]()
        try:
            model.load_state_dict(state)
        except (RuntimeError, KeyError, ValueError) as exc:
            errors.append(f"{name}: {str(exc).splitlines()[0]}")
            continue
        print(f"note: {path} has no tinygrad_cv metadata (an older or foreign file): the "
              f"model ({name}) was found by fitting its weights and the dataset is "
              f"--dataset's ({dataset})", file=sys.stderr)
        mean, std = DATASET_STATS[dataset]
        return name, model, WeightsInfo(name, dataset, list(CLASS_NAMES[dataset]), mean, std,
                                        dict(PREPROCESS[dataset]), recorded=False)
    raise UserError(f"{path}: the weights fit none of the models tried ("
                    + "; ".join(errors) + ")")


def _check_writable(path, flag):
    """Fail before training, not after it, when `path`'s folder does not exist."""
    folder = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(folder):
        raise UserError(f"{flag} {path}: the folder {folder} does not exist")


# ----------------------------------------------------------------------------- commands
def cmd_train(args):
    require_device(args.device)
    apply_threads(args)
    if args.config is not None:            # config style: the training engine
        from .engine.cli import train_config
        return train_config(args)
    for option in ("work_dir", "resume", "cfg_options"):
        if getattr(args, option):
            raise UserError(f"--{option.replace('_', '-')} needs a CONFIG file "
                            f"(train CONFIG --{option.replace('_', '-')} ...)")
    if args.save:
        _check_writable(args.save, "--save")
    manual_seed(args.seed)
    classes = CLASS_NAMES.get(args.dataset)
    if args.dataset == "folder":
        model_name = args.model or "small_cnn"
        if model_name in models.MNIST_MODELS:
            raise UserError(f"--model {model_name} takes 1-channel 28x28 images (MNIST); "
                            "for --dataset folder use --model small_cnn")
        train_tf, val_tf = folder_transforms(args.image_size)
        train_set, test_set, classes = load_folder(args.data_dir, train_tf, val_tf,
                                                   args.val_fraction, args.seed)
        model_args = {"num_classes": len(classes), "in_channels": 3}
        mean, std = IMAGENET_MEAN, IMAGENET_STD
        size = args.image_size
        metadata = {"model": model_name, "model_args": model_args, "dataset": "folder",
                    "classes": list(classes), "input_size": [3, size, size], "resize": size,
                    "normalize": {"mean": list(mean), "std": list(std)},
                    "preprocess": {"resize": size, "crop": "center"},
                    "val_fraction": args.val_fraction, "seed": args.seed,
                    "tinygrad_cv_version": weights_metadata("mlp", "mnist")[
                        "tinygrad_cv_version"]}
    else:
        model_name = args.model or "mnist_cnn"
        model_args = {"num_classes": 10, "in_channels": 1} if model_name == "small_cnn" else {}
        train_set, test_set = load_datasets(args.dataset, args.data_dir)
        mean, std = DATASET_STATS[args.dataset]
        metadata = weights_metadata(model_name, args.dataset, model_args)
    args.model = model_name
    if args.limit:
        train_set = Subset(train_set, np.arange(min(args.limit, len(train_set))))
        test_set = Subset(test_set, np.arange(min(args.limit, len(test_set))))
    if args.dataset == "folder":
        workers = {"num_workers": args.workers, "persistent_workers": args.workers > 0}
        train_loader = DataLoader(train_set, batch_size=args.batch_size, shuffle=True,
                                  seed=args.seed, **workers)
        test_loader = DataLoader(test_set, batch_size=args.test_batch_size, **workers)
    else:
        train_loader = DataLoader(train_set, batch_size=args.batch_size, shuffle=True,
                                  seed=args.seed)
        test_loader = DataLoader(test_set, batch_size=args.test_batch_size)
    model = models.MODELS[args.model](**model_args).to(args.device)
    lr = args.lr if args.lr is not None else DEFAULT_LR[args.optimizer]
    optimizer = build_optimizer(args.optimizer, model.parameters(), lr)
    from .optim.lr_scheduler import StepLR
    scheduler = StepLR(optimizer, step_size=1, gamma=args.gamma)
    print(f"training {args.model} on {args.dataset} ({len(train_set)} train / {len(test_set)} "
          f"test images), {args.optimizer} lr={lr}, batch {args.batch_size}, {args.epochs} "
          f"epoch(s), device {args.device}", flush=True)
    start = time.perf_counter()
    history, last = fit(model, train_loader, test_loader, optimizer, args.epochs, scheduler,
                        args.device, progress=False if args.no_progress else None,
                        mean=mean[0], std=std[0], num_classes=len(classes),
                        print_fn=lambda line: print(line, flush=True),
                        save_interrupted_to=args.save or f"{args.model}_interrupted.safetensors",
                        metadata=metadata)
    print(f"done in {time.perf_counter() - start:.1f} s: test accuracy "
          f"{100 * last.accuracy:.2f}%")
    if args.save:
        serialization.save(model.state_dict(), args.save,
                           metadata=dict(metadata, epoch=len(history),
                                         test_accuracy=last.accuracy))
        print(f"weights saved to {args.save}")
    if args.report:
        from .report import write_report
        path = write_report(args.report, history, last, model, list(classes),
                            title=f"{args.model} on {args.dataset}",
                            details={**{k: v for k, v in vars(args).items() if k != "func"},
                                     "lr": lr})
        print(f"report written to {path}")
    return 0


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


def _folder_val_transform(info):
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
    _, val_set, classes = load_folder(args.data_dir, None, _folder_val_transform(info),
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


def _weights_classifier(args):
    """(source, WeightsInfo, classify) for a weights file: classify(batch) -> probs."""
    require_device(args.device)
    apply_threads(args)
    name, model, info = model_from_weights(args.weights, args.model, args.dataset)
    model.to(args.device).eval()

    def classify(batch):
        from .tensor import Tensor
        with no_grad():
            return model(Tensor(batch, device=args.device)).softmax(dim=1).numpy()
    return args.weights, info, classify


def _onnx_classifier(args):
    """(source, WeightsInfo, classify) for an exported model run by onnxruntime; its
    classes and preprocessing come from the metadata `export` stored in it."""
    from .onnx import runtime
    path = args.onnx
    if args.device != "cpu":
        raise UserError(f"--onnx runs the model in onnxruntime on the CPU; --device "
                        f"{args.device} does not apply")
    if not os.path.isfile(path):
        raise UserError(f"--onnx {path}: no such file")
    try:
        session = runtime.open_session(path)
    except ImportError as exc:
        raise UserError(str(exc)) from None
    except Exception as exc:    # onnxruntime's own error types: a file it cannot load
        raise UserError(f"--onnx {path}: onnxruntime cannot load it "
                        f"({str(exc).splitlines()[0]})") from None
    metadata = runtime.recorded_metadata(session)
    if metadata:
        info = _recorded_info(path, metadata)
        for flag, given, recorded in (("--model", args.model, info.model),
                                      ("--dataset", args.dataset, info.dataset)):
            if given and given != recorded:
                raise UserError(f"{path}: was exported from {recorded} weights, but {flag} "
                                f"{given} was given")
    else:
        dataset = args.dataset or "mnist"
        print(f"note: {path} has no tinygrad_cv metadata (not made by `export`): "
              f"--dataset's ({dataset}) classes and normalisation are used", file=sys.stderr)
        mean, std = DATASET_STATS[dataset]
        info = WeightsInfo(args.model or "?", dataset, list(CLASS_NAMES[dataset]), mean, std,
                           dict(PREPROCESS[dataset]), recorded=False)

    def classify(batch):
        logits = runtime.run(session, batch.astype(np.float32)).astype(np.float64)
        e = np.exp(logits - logits.max(axis=1, keepdims=True))
        return e / e.sum(axis=1, keepdims=True)
    return path, info, classify


def cmd_predict(args):
    """Classify each image; an image that cannot be read (or is blank) is an `error:`
    line of its own, the others are still classified, and the exit status is then 2.
    With --onnx the first positional argument is an image too (no weights file)."""
    if args.onnx:
        image_paths = [args.weights] + list(args.images)
        source, info, classify = _onnx_classifier(args)
    else:
        if not args.images:
            raise UserError("predict: no image files given (predict WEIGHTS IMAGE...)")
        image_paths = list(args.images)
        source, info, classify = _weights_classifier(args)
    if info.dataset == "folder":
        return _predict_folder(image_paths, info, classify)
    channels, height, width = info.input_size
    if channels != 1 or height != width:
        raise UserError(f"{source}: predict reads images for square 1-channel models; "
                        f"this one takes {info.input_size}")
    paths, images, failed = [], [], 0
    for path in image_paths:
        try:
            images.append(load_image(path, size=height, fit=int(info.preprocess.get("fit", 20)),
                                     center=info.preprocess.get("center", "mass")))
            paths.append(path)
        except UserError as exc:
            print(f"error: {exc}", file=sys.stderr)
            failed += 1
    if images:
        batch = np.stack(images)[:, None]
        mean = np.asarray(info.mean, dtype=np.float32).reshape(1, -1, 1, 1)
        std = np.asarray(info.std, dtype=np.float32).reshape(1, -1, 1, 1)
        _print_predictions(paths, classify(((batch - mean) / std).astype(np.float32)),
                           info.classes)
    return 2 if failed else 0


def _predict_folder(image_paths, info, classify):
    """`predict` of folder weights: each image through the recorded validation transform."""
    transform = _folder_val_transform(info)
    paths, images, failed = [], [], 0
    for path in image_paths:
        try:
            images.append(transform(pil_loader(path)).numpy())
            paths.append(path)
        except (ImageFileError, FileNotFoundError, IsADirectoryError) as exc:
            message = str(exc) if str(path) in str(exc) else f"{path}: {exc}"
            print(f"error: {message}", file=sys.stderr)
            failed += 1
    if images:
        _print_predictions(paths, classify(np.stack(images).astype(np.float32)), info.classes)
    return 2 if failed else 0


def _print_predictions(paths, probs, classes):
    """One line per image: the top class and the top three probabilities."""
    for path, p in zip(paths, probs):
        top = int(p.argmax())
        ranked = np.argsort(p)[::-1][:3]
        others = ", ".join(f"{classes[k]} {100 * p[k]:.1f}%" for k in ranked)
        print(f"{path}: {classes[top]} ({100 * p[top]:.1f}%)  [{others}]")


def batch_spec(text):
    """--batch: "dynamic" (None) or a positive int."""
    if text == "dynamic":
        return None
    try:
        n = int(text)
    except ValueError:
        n = 0
    if n < 1:
        raise argparse.ArgumentTypeError(f"expected 'dynamic' or a positive int, got {text!r}")
    return n


EXPORT_CHECK_TOLERANCE = 1e-4
"""The largest difference (relative to the outputs' scale) export's onnxruntime check
accepts; the tests hold exports to 1e-5."""


def cmd_export(args):
    """Write the weights' model as ONNX, then run it in onnxruntime (when installed) on a
    random batch and compare with our forward."""
    apply_threads(args)
    _check_writable(args.output, "export: the output")
    name, model, info = model_from_weights(args.weights, args.model, args.dataset)
    metadata = serialization.load_metadata(args.weights) or weights_metadata(name, info.dataset)
    from .onnx import ExportError, export, runtime
    from .tensor import Tensor
    batch = 2 if args.batch is None else args.batch
    rng = np.random.default_rng(0)
    x = rng.standard_normal((batch,) + tuple(info.input_size)).astype(np.float32)
    dynamic = None if args.batch is not None else {"input": {0: "batch"},
                                                   "output": {0: "batch"}}
    try:
        export(model, Tensor(x), args.output, input_names=["input"], output_names=["output"],
               dynamic_axes=dynamic, opset_version=args.opset,
               metadata={runtime.METADATA_KEY: json.dumps(metadata)})
    except ImportError as exc:
        raise UserError(str(exc)) from None
    except (ExportError, ValueError) as exc:
        raise UserError(f"{args.weights}: {exc}") from None
    shape = ("batch" if args.batch is None else str(batch),) + tuple(map(str, info.input_size))
    print(f"exported {name} ({args.weights}) to {args.output}: opset {args.opset}, input "
          f"'input' of shape ({', '.join(shape)}) float32, output 'output'")
    try:
        session = runtime.open_session(args.output)
    except ImportError:
        print("note: onnxruntime is not installed, so the model was not run to check it",
              file=sys.stderr)
        return 0
    check = rng.standard_normal((3 if args.batch is None else batch,)
                                + tuple(info.input_size)).astype(np.float32)
    model.eval()
    with no_grad():
        ours = model(Tensor(check)).numpy()
    theirs = runtime.run(session, check)
    scale = max(float(np.abs(ours).max()), 1e-3)
    diff = float(np.abs(ours - theirs).max())
    if diff > EXPORT_CHECK_TOLERANCE * scale:
        print(f"error: onnxruntime's outputs differ from ours by up to {diff:.3g} (scale "
              f"{scale:.3g}); please report this", file=sys.stderr)
        return 1
    print(f"checked in onnxruntime on a batch of {check.shape[0]}: the outputs match ours "
          f"(max difference {diff:.2g}, scale {scale:.2g})")
    return 0


# ----------------------------------------------------------------------------- parser
def build_parser():
    parser = ArgumentParser(prog="python -m tinygrad_cv", description=__doc__)
    add_version(parser)
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND",
                                help="train, test, evaluate, predict or export (each has its "
                                     "own --help)")

    def common(p, dataset_default):
        if dataset_default:
            p.add_argument("--dataset", choices=sorted(DATASET_STATS) + ["folder"],
                           default=dataset_default,
                           help="the dataset to train on (folder: your own images in "
                                "--data-dir, one folder per class)")
        else:
            p.add_argument("--dataset", choices=sorted(DATASET_STATS) + ["folder"], default=None,
                           help="the dataset the weights are for (default: the one recorded "
                                "in the weights file; mnist for files without metadata); "
                                "a different one than recorded is an error")
        p.add_argument("--data-dir", default=None,
                       help="folder with the IDX .gz files (default: $TINYGRAD_CV_DATA, "
                            "then ~/.cache/tinygrad_cv, downloading if missing); for "
                            "--dataset folder: the folder of class folders, or of train/ "
                            "and val/")
        add_device(p)
        add_threads(p)

    def weights_args(p):
        p.add_argument("weights", help="a safetensors weights file (from train --save)")
        p.add_argument("--model", choices=sorted(models.MODELS), default=None,
                       help="the model the weights are for (default: the recorded one; for "
                            "files without metadata, the first model they fit)")

    t = sub.add_parser("train", help="train a model",
                       description="Train a model, evaluating on the test set after each "
                                   "epoch.\nCtrl-C or SIGTERM saves the best epoch's weights "
                                   "so far (to --save, else\n<model>_interrupted.safetensors) "
                                   "and exits with status 130 or 143.")
    common(t, "mnist")
    t.add_argument("--model", choices=sorted(models.MODELS), default=None,
                   help="the network to train (default: mnist_cnn; small_cnn for --dataset "
                        "folder)")
    t.add_argument("--image-size", type=positive_int, default=64,
                   help="--dataset folder: images are resized and cropped to this size")
    t.add_argument("--val-fraction", type=positive_float, default=0.2,
                   help="--dataset folder without train/ and val/: the share of images held "
                        "out for validation (seeded by --seed)")
    t.add_argument("--workers", type=non_negative_int, default=2,
                   help="--dataset folder: worker processes decoding images (0: this one)")
    t.add_argument("--epochs", type=positive_int, default=1, help="passes over the training set")
    t.add_argument("--batch-size", type=positive_int, default=64, help="training batch size")
    t.add_argument("--test-batch-size", type=positive_int, default=1000,
                   help="evaluation batch size")
    t.add_argument("--optimizer", choices=sorted(DEFAULT_LR), default="adadelta",
                   help="the optimizer (PyTorch's defaults but lr; sgd with momentum 0.9)")
    t.add_argument("--lr", type=positive_float, default=None,
                   help="learning rate (default: 1.0 adadelta, 0.01 sgd, 1e-3 adam/adamw)")
    t.add_argument("--gamma", type=positive_float, default=0.7,
                   help="StepLR decay of the learning rate per epoch")
    t.add_argument("--seed", type=non_negative_int, default=1, help="random seed")
    t.add_argument("--limit", type=positive_int, default=None, metavar="N",
                   help="use only the first N train and test images, for quick tries "
                        "(default: all)")
    t.add_argument("--save", metavar="PATH",
                   help="write the weights (safetensors, with metadata) here (default: not "
                        "saved, except on an interrupt)")
    t.add_argument("--report", metavar="DIR",
                   help="write an HTML report into DIR (default: none)")
    t.add_argument("--no-progress", action="store_true",
                   help="no progress bar (it is only drawn when stderr is a terminal anyway)")
    t.add_argument("config", nargs="?", default=None, metavar="CONFIG",
                   help="a config file (.py, .toml or .json, see configs/): train it with "
                        "the engine (checkpoints, resume, metrics file) instead of the flags")
    from .engine.cli import add_config_arguments
    add_config_arguments(t)
    t.set_defaults(func=cmd_train)

    c = sub.add_parser("test", help="test a checkpoint of a config",
                       description="Evaluate CKPT (a checkpoint or weights file) on the "
                                   "config's test_dataloader (else val_dataloader).")
    c.add_argument("config", metavar="CONFIG", help="the config the checkpoint was trained with")
    c.add_argument("checkpoint", metavar="CKPT", help="a checkpoint from train CONFIG")
    add_config_arguments(c, with_resume=False)
    add_device(c)
    add_threads(c)
    c.set_defaults(func=cmd_test)

    e = sub.add_parser("evaluate", help="test accuracy of saved weights",
                       description="Test loss, accuracy and confusion matrix of a weights "
                                   "file on its dataset's test set.")
    weights_args(e)
    common(e, None)
    e.add_argument("--batch-size", type=positive_int, default=1000, help="evaluation batch size")
    e.set_defaults(func=cmd_evaluate)

    p = sub.add_parser("predict", help="classify image files",
                       description="Classify image files as MNIST's images were made: each "
                                   "is composited onto white\n(transparency), inverted when "
                                   "its background is light, cropped to its ink, scaled\n"
                                   "into a 20x20 box (Fashion-MNIST: 28x28) and centred by "
                                   "its centre of mass in 28x28.")
    weights_args(p)
    p.add_argument("images", nargs="*", help="image files (any format Pillow reads)")
    p.add_argument("--onnx", metavar="MODEL.onnx", default=None,
                   help="run this exported model in onnxruntime instead (give no weights "
                        "file then: every positional argument is an image)")
    common(p, None)
    p.set_defaults(func=cmd_predict)

    x = sub.add_parser("export", help="write a weights file's model as ONNX",
                       description="Write the model of a weights file as an ONNX model "
                                   "(the weights' metadata included,\nfor predict --onnx), "
                                   "then run it in onnxruntime, when installed, to check\n"
                                   "its outputs against ours. Needs the optional extra "
                                   "onnx.")
    weights_args(x)
    x.add_argument("output", metavar="OUT.onnx", help="the ONNX file to write")
    x.add_argument("--opset", type=positive_int, default=17,
                   help="the ONNX opset version (13 to the installed onnx's newest)")
    x.add_argument("--batch", type=batch_spec, default=None, metavar="dynamic|N",
                   help="the batch size: 'dynamic' (any batch, the default) or a fixed N")
    x.add_argument("--dataset", choices=sorted(DATASET_STATS), default=None,
                   help="the dataset the weights are for (default: the recorded one; mnist "
                        "for files without metadata)")
    add_threads(x)
    x.set_defaults(func=cmd_export)
    return parser


def _main(argv):
    args = build_parser().parse_args(argv)
    return args.func(args)


def main(argv=None):
    """The `python -m tinygrad_cv` / `tinygrad-cv` entry point; returns the exit status."""
    return run_main(_main, argv)


if __name__ == "__main__":
    sys.exit(main())
