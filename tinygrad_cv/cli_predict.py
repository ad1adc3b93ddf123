"""`predict WEIGHTS IMAGE...` (or `predict --onnx MODEL.onnx IMAGE...`): the class and
top probabilities of each image, preprocessed as the weights' dataset was made."""
from __future__ import annotations

import os
import sys

import numpy as np

from .autograd import no_grad
from .cli_args import apply_threads, require_device
from .cli_evaluate import folder_val_transform
from .cli_weights import WeightsInfo, model_from_weights, recorded_info
from .datasets import ImageFileError, pil_loader
from .errors import UserError
from .image_input import load_image
from .train import CLASS_NAMES, DATASET_STATS, PREPROCESS


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
        info = recorded_info(path, metadata)
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
    transform = folder_val_transform(info)
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
