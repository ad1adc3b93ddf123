"""Evaluation metrics: `process(outputs, targets)` per batch, `compute()` at the end.

Every metric keeps only integer counts (so memory stays flat whatever the dataset size,
and counts from several processes add up: `reduce(sum_fn)` is the hook a distributed
launcher uses before `compute()`). `outputs` are scores (N, C) — or (N, C, H, W) for
segmentation — or already predicted labels (N,) / (N, H, W); `targets` are labels.
Tensors, NumPy and CuPy arrays are accepted.
"""
from __future__ import annotations

import numpy as np

from ..backend import is_device_array, to_numpy


def _host(value):
    """A NumPy array of a Tensor, a NumPy/CuPy array or a list."""
    from ..tensor import Tensor
    if isinstance(value, Tensor):
        return np.asarray(value.detach().numpy())
    if is_device_array(value):
        return to_numpy(value)
    return np.asarray(value)


class BaseMetric:
    """A metric: `reset()`, `process(outputs, targets)`, `compute() -> dict`."""

    def __init__(self):
        self.reset()

    def reset(self):
        raise NotImplementedError

    def process(self, outputs, targets):
        raise NotImplementedError

    def compute(self):
        raise NotImplementedError

    def counts(self):
        """The metric's state: a dict of NumPy count arrays."""
        return {k: v for k, v in vars(self).items() if k.startswith("_n")}

    def reduce(self, sum_fn):
        """Replace each count array by `sum_fn(array)` (a sum over processes)."""
        for key, value in self.counts().items():
            setattr(self, key, np.asarray(sum_fn(value)))


def _labels_and_scores(outputs, targets, op):
    out = _host(outputs)
    tgt = _host(targets)
    if tgt.dtype.kind not in "iub":
        raise TypeError(f"{op}: targets must be integer class labels, got dtype {tgt.dtype}")
    return out, tgt.astype(np.int64, copy=False)


def _check_class_range(labels, num_classes, op, what):
    if labels.size and (labels.min() < 0 or labels.max() >= num_classes):
        raise ValueError(f"{op}: {what} must be in [0, {num_classes}), got values from "
                         f"{labels.min()} to {labels.max()}")


class Accuracy(BaseMetric):
    """Top-k accuracy for each k in `topk` (a sample counts when its target is among
    the k highest scores; ties broken by index, as torch.topk on CPU).
    `compute()` -> {"accuracy/top1": ..., "accuracy/top5": ...} (fractions in [0, 1])."""

    def __init__(self, topk=(1,)):
        topk = (topk,) if isinstance(topk, int) else tuple(topk)
        if not topk or not all(isinstance(k, int) and k >= 1 for k in topk):
            raise ValueError(f"Accuracy: topk must be positive ints, got {topk!r}")
        self.topk = topk
        super().__init__()

    def reset(self):
        self._n_correct = np.zeros(len(self.topk), dtype=np.int64)
        self._n_total = np.zeros((), dtype=np.int64)

    def process(self, outputs, targets):
        scores, labels = _labels_and_scores(outputs, targets, "Accuracy")
        if scores.ndim != 2 or labels.shape != scores.shape[:1]:
            raise ValueError(f"Accuracy: expected outputs (N, C) and targets (N,), got "
                             f"{scores.shape} and {labels.shape}")
        classes = scores.shape[1]
        if max(self.topk) > classes:
            raise ValueError(f"Accuracy: top-{max(self.topk)} needs at least that many "
                             f"classes; outputs have {classes}")
        _check_class_range(labels, classes, "Accuracy", "targets")
        # rank of the target = number of scores strictly higher, plus equal ones before it
        target_score = scores[np.arange(len(labels)), labels][:, None]
        higher = (scores > target_score).sum(axis=1)
        tied_before = ((scores == target_score)
                       & (np.arange(classes)[None, :] < labels[:, None])).sum(axis=1)
        rank = higher + tied_before
        self._n_correct += np.array([(rank < k).sum() for k in self.topk], dtype=np.int64)
        self._n_total += len(labels)

    def compute(self):
        total = int(self._n_total)
        return {f"accuracy/top{k}": (float(c) / total if total else float("nan"))
                for k, c in zip(self.topk, self._n_correct)}


class ConfusionMatrix(BaseMetric):
    """Counts [true class, predicted class]. `compute()` -> {"confusion_matrix": array}."""

    def __init__(self, num_classes):
        if not isinstance(num_classes, int) or num_classes < 1:
            raise ValueError(f"{type(self).__name__}: num_classes must be a positive int, "
                             f"got {num_classes!r}")
        self.num_classes = num_classes
        super().__init__()

    def reset(self):
        self._n_matrix = np.zeros((self.num_classes, self.num_classes), dtype=np.int64)

    def process(self, outputs, targets):
        op = type(self).__name__
        out, labels = _labels_and_scores(outputs, targets, op)
        predicted = out.argmax(axis=1) if out.ndim == labels.ndim + 1 else out
        predicted = predicted.astype(np.int64, copy=False)
        if predicted.shape != labels.shape:
            raise ValueError(f"{op}: outputs {out.shape} do not match targets {labels.shape} "
                             f"(expected scores (N, C) or labels (N,))")
        _check_class_range(labels, self.num_classes, op, "targets")
        _check_class_range(predicted, self.num_classes, op, "predictions")
        k = self.num_classes
        self._n_matrix += np.bincount(labels.ravel() * k + predicted.ravel(),
                                      minlength=k * k).reshape(k, k)

    def compute(self):
        return {"confusion_matrix": self._n_matrix.copy()}


def _safe_divide(num, den):
    """num / den with 0 where den is 0 (scikit-learn's zero_division=0)."""
    num = np.asarray(num, dtype=np.float64)
    den = np.asarray(den, dtype=np.float64)
    return np.divide(num, den, out=np.zeros_like(num), where=den != 0)


class ClassificationReport(ConfusionMatrix):
    """Per-class precision, recall and F1 (0 where undefined, as scikit-learn's
    zero_division=0), their macro averages and the support of each class.
    `compute()` -> {"precision", "recall", "f1" (macro), "accuracy",
    "precision_per_class", "recall_per_class", "f1_per_class", "support",
    "confusion_matrix"}."""

    def compute(self):
        m = self._n_matrix
        tp = np.diag(m)
        predicted, support = m.sum(axis=0), m.sum(axis=1)
        precision = _safe_divide(tp, predicted)
        recall = _safe_divide(tp, support)
        f1 = _safe_divide(2 * precision * recall, precision + recall)
        total = m.sum()
        return {"precision": float(precision.mean()), "recall": float(recall.mean()),
                "f1": float(f1.mean()),
                "accuracy": float(tp.sum() / total) if total else float("nan"),
                "precision_per_class": precision.tolist(), "recall_per_class": recall.tolist(),
                "f1_per_class": f1.tolist(), "support": support.tolist(),
                "confusion_matrix": m.copy()}


class MeanIoU(ConfusionMatrix):
    """Segmentation: per-class IoU = TP / (TP + FP + FN) over all pixels, the mean over
    classes present in targets or predictions (NaN classes skipped, as mmseg), and the
    pixel accuracy. Pixels whose target is `ignore_index` are left out.
    `compute()` -> {"mIoU", "aAcc", "IoU_per_class"}."""

    def __init__(self, num_classes, ignore_index=255):
        self.ignore_index = ignore_index
        super().__init__(num_classes)

    def process(self, outputs, targets):
        out, labels = _labels_and_scores(outputs, targets, "MeanIoU")
        predicted = out.argmax(axis=1) if out.ndim == labels.ndim + 1 else out
        if predicted.shape != labels.shape:
            raise ValueError(f"MeanIoU: outputs {out.shape} do not match targets "
                             f"{labels.shape} (expected scores (N, C, H, W) or labels (N, H, W))")
        keep = labels != self.ignore_index
        super().process(predicted[keep], labels[keep])

    def compute(self):
        m = self._n_matrix
        tp = np.diag(m).astype(np.float64)
        union = m.sum(axis=0) + m.sum(axis=1) - tp
        iou = np.where(union > 0, tp / np.where(union > 0, union, 1), np.nan)
        total = m.sum()
        present = ~np.isnan(iou)
        return {"mIoU": float(iou[present].mean()) if present.any() else float("nan"),
                "aAcc": float(tp.sum() / total) if total else float("nan"),
                "IoU_per_class": iou.tolist()}
