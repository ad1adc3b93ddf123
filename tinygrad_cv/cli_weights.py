"""Weights files for the CLI: read one (a UserError when it is not one), learn from its
metadata how to use it (`WeightsInfo`), and build its model (`model_from_weights`)."""
from __future__ import annotations

import os
import sys
from dataclasses import dataclass

from . import models, serialization
from .errors import UserError
from .train import CLASS_NAMES, DATASET_STATS, INPUT_SIZE, PREPROCESS


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


def recorded_info(path, metadata):
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
        info = recorded_info(path, metadata)
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


def check_writable(path, flag):
    """Fail before training, not after it, when `path`'s folder does not exist."""
    folder = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(folder):
        raise UserError(f"{flag} {path}: the folder {folder} does not exist")
