"""Loss ops, fused forward/backward: cross-entropy, nll, mse, bce-with-logits.

Cross-entropy and nll share one idea: for each sample (row i, classes j along dim 1) a
"weighted target" a_ij is built (class weights times the - possibly label-smoothed -
one-hot or probability target; zero for ignored samples), and
    nll:           loss_i = -sum_j a_ij * x_ij                  dx_ij = -a_ij
    cross-entropy: loss_i = -sum_j a_ij * log_softmax(z)_ij    dz_ij = softmax_ij * sum_j a_ij - a_ij
which is torch's `(softmax - onehot)` generalised to weights and label smoothing. The
log-softmax subtracts the row max, so logits of +-1e4 stay finite. "mean" divides by the
summed weights of the non-ignored targets (torch's rule; by the sample count for
probability targets).
"""
from __future__ import annotations

import warnings

import numpy as np

from .. import dtypes
from ..autograd import Function
from ..backend import xp_of
from ..tensor import Tensor

REDUCTIONS = ("none", "mean", "sum")


# ----------------------------------------------------------------------------- helpers

def legacy_reduction(size_average, reduce, reduction):
    """torch's deprecated `size_average`/`reduce` arguments mapped to `reduction`."""
    if size_average is None and reduce is None:
        return reduction
    size_average = True if size_average is None else size_average
    reduce = True if reduce is None else reduce
    if not reduce:
        return "none"
    return "mean" if size_average else "sum"


def check_reduction(op, reduction):
    if reduction not in REDUCTIONS:
        raise ValueError(f"{op}: {reduction!r} is not a valid value for reduction "
                         f"(expected one of {', '.join(REDUCTIONS)})")


def _classes_last(x):
    """(N, C, d1, ...) -> (N*d1*..., C); (N, C) stays as it is."""
    if x.ndim == 2:
        return x
    xp = xp_of(x)
    return xp.ascontiguousarray(xp.moveaxis(x, 1, -1)).reshape(-1, x.shape[1])


def _classes_back(rows, shape):
    """Undo `_classes_last` for an array of the input's `shape`."""
    if len(shape) == 2:
        return rows
    xp = xp_of(rows)
    moved = rows.reshape((shape[0],) + tuple(shape[2:]) + (shape[1],))
    return xp.moveaxis(moved, -1, 1)


def _log_softmax_rows(z):
    xp = xp_of(z)
    shifted = z - z.max(axis=1, keepdims=True)
    return shifted - xp.log(xp.exp(shifted).sum(axis=1, keepdims=True))


def _weighted_target(target, weight, n_classes, dtype, ignore_index, label_smoothing,
                     probabilities):
    """(a, denominator): the weighted target rows and the 'mean' divisor."""
    xp = xp_of(target)
    if probabilities:
        a = _classes_last(target).astype(dtype, copy=True)
        if label_smoothing > 0:
            a = a * dtype.type(1 - label_smoothing) + dtype.type(label_smoothing / n_classes)
        if weight is not None:
            a = a * weight.astype(dtype)
        return a, a.shape[0]
    labels = target.reshape(-1)
    valid = labels != ignore_index
    safe = xp.where(valid, labels, 0)
    rows = xp.arange(labels.shape[0])
    per_sample_w = weight.astype(dtype)[safe] if weight is not None \
        else xp.ones(labels.shape[0], dtype=dtype)
    per_sample_w = per_sample_w * valid
    a = xp.zeros((labels.shape[0], n_classes), dtype=dtype)
    a[rows, safe] = per_sample_w * dtype.type(1 - label_smoothing)
    if label_smoothing > 0:
        row_w = weight.astype(dtype)[None, :] if weight is not None \
            else xp.ones((1, n_classes), dtype=dtype)
        a += (row_w * dtype.type(label_smoothing / n_classes)) * valid[:, None]
    return a, per_sample_w.sum()


def _target_sum(a, values):
    """-sum_j a_ij * values_ij per row, where a zero weight contributes exactly 0 even
    against an infinite value (torch gathers the target entries: a -inf logit of another
    class leaves the loss finite, while 0 * -inf would be NaN)."""
    xp = xp_of(a)
    return -xp.where(a != 0, a * values, a.dtype.type(0)).sum(axis=1)


def _reduce_rows(per_row, reduction, denominator, out_shape):
    xp = xp_of(per_row)
    if reduction == "none":
        return per_row.reshape(out_shape)
    total = per_row.sum()
    if reduction == "sum":
        return total
    with _quiet(xp):
        return (total / denominator).astype(per_row.dtype)


class _quiet:
    """Silence NumPy's 0/0 warning: a mean over only ignored targets is nan, as in torch."""

    def __init__(self, xp):
        self.xp = xp

    def __enter__(self):
        if hasattr(self.xp, "seterr"):
            self.old = self.xp.seterr(invalid="ignore", divide="ignore")

    def __exit__(self, *exc):
        if hasattr(self.xp, "seterr"):
            self.xp.seterr(**self.old)


def _row_scale(ctx, grad):
    """The upstream gradient per row: broadcast scalar (mean/sum) or per sample (none)."""
    if ctx.reduction == "none":
        return grad.reshape(-1, 1)
    scale = grad if ctx.reduction == "sum" else grad / ctx.denominator
    return scale.reshape(1, 1)


# ----------------------------------------------------------------------------- the ops

class CrossEntropy(Function):
    """Inputs: logits (N, C, ...), target, then the class weight when `has_weight`."""

    @staticmethod
    def forward(ctx, logits, target, *weight, ignore_index, label_smoothing, reduction,
                probabilities):
        weight = weight[0] if weight else None
        n_classes = logits.shape[1]
        logp = _log_softmax_rows(_classes_last(logits))
        a, denominator = _weighted_target(target, weight, n_classes, logp.dtype, ignore_index,
                                          label_smoothing, probabilities)
        # class probabilities: torch's plain -sum(a * logp) (NaN for 0 * -inf, as torch)
        per_row = -(a * logp).sum(axis=1) if probabilities else _target_sum(a, logp)
        ctx.save_for_backward(logp, a)
        ctx.denominator, ctx.reduction, ctx.shape = denominator, reduction, logits.shape
        ctx.weight, ctx.label_smoothing = weight, label_smoothing
        out_shape = (logits.shape[0],) + tuple(logits.shape[2:])
        return _reduce_rows(per_row, reduction, denominator, out_shape)

    @staticmethod
    def backward(ctx, grad):
        logp, a = ctx.saved
        xp = xp_of(logp)
        scale = _row_scale(ctx, grad).astype(logp.dtype)
        dlogits = dtarget = None
        if ctx.needs_input_grad[0]:
            rows = (xp.exp(logp) * a.sum(axis=1, keepdims=True) - a) * scale
            dlogits = _classes_back(rows, ctx.shape)
        if len(ctx.needs_input_grad) > 1 and ctx.needs_input_grad[1]:
            rows = -logp * logp.dtype.type(1 - ctx.label_smoothing) * scale
            if ctx.weight is not None:
                rows = rows * ctx.weight.astype(logp.dtype)
            dtarget = _classes_back(rows, ctx.shape)
        extra = (None,) * (len(ctx.needs_input_grad) - 2)
        return (dlogits, dtarget) + extra


class NLL(Function):
    """Inputs: log-probabilities (N, C, ...), class-index target, then the class weight."""

    @staticmethod
    def forward(ctx, logp, target, *weight, ignore_index, reduction):
        weight = weight[0] if weight else None
        rows = _classes_last(logp)
        a, denominator = _weighted_target(target, weight, logp.shape[1], logp.dtype,
                                          ignore_index, 0.0, False)
        per_row = _target_sum(a, rows)
        ctx.save_for_backward(a)
        ctx.denominator, ctx.reduction, ctx.shape = denominator, reduction, logp.shape
        out_shape = (logp.shape[0],) + tuple(logp.shape[2:])
        return _reduce_rows(per_row, reduction, denominator, out_shape)

    @staticmethod
    def backward(ctx, grad):
        (a,) = ctx.saved
        scale = _row_scale(ctx, grad).astype(a.dtype)
        extra = (None,) * (len(ctx.needs_input_grad) - 1)
        return (_classes_back(-a * scale, ctx.shape),) + extra


class MSE(Function):
    """Mean/sum/none of (input - target)^2, with broadcasting."""

    @staticmethod
    def forward(ctx, x, y, reduction):
        diff = x - y
        ctx.save_for_backward(diff)
        ctx.reduction = reduction
        sq = diff * diff
        if reduction == "none":
            return sq
        return sq.sum() if reduction == "sum" else sq.mean()

    @staticmethod
    def backward(ctx, grad):
        (diff,) = ctx.saved
        scale = grad if ctx.reduction != "mean" else grad / diff.dtype.type(diff.size)
        dx = diff * (2 * scale)
        return (dx if ctx.needs_input_grad[0] else None,
                -dx if ctx.needs_input_grad[1] else None)


class BCEWithLogits(Function):
    """Stable binary cross-entropy on logits, torch's formula:
        loss = w * ((1 - y) * x + (1 + (pw - 1) * y) * softplus(-x))
    with softplus(-x) = log1p(exp(-|x|)) + max(-x, 0); sigmoid(x) = exp(-softplus(-x)).
    Inputs: x, y, then weight and/or pos_weight when present."""

    @staticmethod
    def forward(ctx, x, y, *extra, has_weight, has_pos_weight, reduction):
        xp = xp_of(x)
        weight = extra[0] if has_weight else None
        pos_weight = extra[-1] if has_pos_weight else None
        softplus_neg = xp.log1p(xp.exp(-xp.abs(x))) + xp.maximum(-x, 0)
        log_weight = 1 + (pos_weight - 1) * y if pos_weight is not None else None
        unweighted = (1 - y) * x + (log_weight * softplus_neg if log_weight is not None
                                    else softplus_neg)
        loss = unweighted * weight if weight is not None else unweighted
        ctx.save_for_backward(x, y, softplus_neg, unweighted, weight, pos_weight)
        ctx.reduction = reduction
        ctx.size = loss.size
        if reduction == "none":
            return loss
        return loss.sum() if reduction == "sum" else loss.mean()

    @staticmethod
    def backward(ctx, grad):
        x, y, softplus_neg, unweighted, weight, pos_weight = ctx.saved
        xp = xp_of(x)
        upstream = grad if ctx.reduction != "mean" else grad / x.dtype.type(ctx.size)
        g = upstream * weight if weight is not None else upstream
        needs = ctx.needs_input_grad
        grads = [None, None]
        if needs[0]:
            if pos_weight is None:
                dx = xp.exp(-softplus_neg) - y                      # sigmoid(x) - y
            else:
                one_minus_sig = xp.exp(-(softplus_neg + x))         # sigmoid(-x)
                dx = (1 - y) - (1 + (pos_weight - 1) * y) * one_minus_sig
            grads[0] = dx * g
        if needs[1]:
            dy = -x + ((pos_weight - 1) * softplus_neg if pos_weight is not None else 0)
            grads[1] = dy * g
        if weight is not None:
            grads.append(unweighted * upstream if needs[len(grads)] else None)
        if pos_weight is not None:
            grads.append(y * softplus_neg * g if needs[len(grads)] else None)
        return tuple(grads)


# ----------------------------------------------------------------------------- checks

def _check_logits(op, input):
    if not isinstance(input, Tensor):
        raise TypeError(f"{op}: expected a Tensor input, got {type(input).__name__}")
    if not dtypes.is_floating(input.dtype):
        raise TypeError(f"{op}: expected floating point input, got {input.dtype}")
    if input.ndim == 0:
        raise ValueError(f"{op}: input must have at least 1 dim (C,) or (N, C, ...), "
                         f"got a 0-d tensor")


def _check_class_targets(op, input, target, ignore_index):
    """Shapes and values of class-index targets, checked before any computing."""
    expected = (input.shape[0],) + tuple(input.shape[2:])
    if target.shape != expected:
        raise ValueError(f"{op}: expected target of shape {expected} for input of shape "
                         f"{input.shape}, got target of shape {target.shape}")
    if target.numel() == 0:
        return
    n_classes = input.shape[1]
    labels = target.data
    bad = ((labels < 0) | (labels >= n_classes)) & (labels != ignore_index)
    if bool(bad.any()):
        first = int(labels[bad].reshape(-1)[0])
        raise IndexError(f"{op}: target {first} is out of bounds for input of shape "
                         f"{input.shape} with {n_classes} classes (targets must be in "
                         f"[0, {n_classes - 1}] or ignore_index={ignore_index})")


def _check_weight(op, weight, n_classes, input):
    if weight is None:
        return
    if not isinstance(weight, Tensor):
        raise TypeError(f"{op}: weight must be a Tensor or None, got {type(weight).__name__}")
    if weight.shape != (n_classes,):
        raise ValueError(f"{op}: weight has shape {weight.shape} but the input has "
                         f"{n_classes} classes (expected shape ({n_classes},))")


def _as_batched(input, target):
    """Unbatched (C,) input and () target -> (1, C) and (1,), as torch accepts them."""
    return input.unsqueeze(0), target.unsqueeze(0)


# ----------------------------------------------------------------------------- functions

def cross_entropy(input, target, weight=None, size_average=None, ignore_index=-100,
                  reduce=None, reduction="mean", label_smoothing=0.0):
    """`torch.nn.functional.cross_entropy`: class-index or class-probability targets."""
    op = "cross_entropy"
    reduction = legacy_reduction(size_average, reduce, reduction)
    check_reduction(op, reduction)
    _check_logits(op, input)
    if not isinstance(target, Tensor):
        raise TypeError(f"{op}: expected a Tensor target, got {type(target).__name__}")
    if not 0.0 <= label_smoothing <= 1.0:
        raise ValueError(f"{op}: label_smoothing must be between 0.0 and 1.0, got "
                         f"{label_smoothing}")
    unbatched = input.ndim == 1
    probabilities = dtypes.is_floating(target.dtype)
    if probabilities:
        if target.shape != input.shape:
            raise ValueError(f"{op}: probability targets must have the input's shape "
                             f"{input.shape}, got {target.shape}")
        if target.dtype != input.dtype:
            target = target.astype(input.dtype)
    elif target.dtype.kind not in "iu":
        raise TypeError(f"{op}: target must hold class indices (an integer tensor) or "
                        f"class probabilities (a float tensor), got {target.dtype}")
    if unbatched:
        input, target = _as_batched(input, target)
    n_classes = input.shape[1]
    if not probabilities:
        _check_class_targets(op, input, target, ignore_index)
    _check_weight(op, weight, n_classes, input)
    extra = (weight,) if weight is not None else ()
    out = CrossEntropy.apply(input, target, *extra, ignore_index=int(ignore_index),
                             label_smoothing=float(label_smoothing), reduction=reduction,
                             probabilities=probabilities)
    return out.squeeze(0) if unbatched and reduction == "none" else out


def nll_loss(input, target, weight=None, size_average=None, ignore_index=-100, reduce=None,
             reduction="mean"):
    """`torch.nn.functional.nll_loss` on log-probabilities and class-index targets."""
    op = "nll_loss"
    reduction = legacy_reduction(size_average, reduce, reduction)
    check_reduction(op, reduction)
    _check_logits(op, input)
    if not isinstance(target, Tensor) or target.dtype.kind not in "iu":
        raise TypeError(f"{op}: target must be an integer tensor of class indices, got "
                        f"{getattr(target, 'dtype', type(target).__name__)}")
    unbatched = input.ndim == 1
    if unbatched:
        input, target = _as_batched(input, target)
    _check_class_targets(op, input, target, ignore_index)
    _check_weight(op, weight, input.shape[1], input)
    extra = (weight,) if weight is not None else ()
    out = NLL.apply(input, target, *extra, ignore_index=int(ignore_index), reduction=reduction)
    return out.squeeze(0) if unbatched and reduction == "none" else out


def _float_pair(op, input, target):
    from .elementwise import binary_operands
    if not isinstance(input, Tensor) or not isinstance(target, Tensor):
        raise TypeError(f"{op}: input and target must be Tensors, got "
                        f"{type(input).__name__} and {type(target).__name__}")
    input, target = binary_operands(input, target, op)
    if not dtypes.is_floating(input.dtype):
        raise TypeError(f"{op}: expected floating point input and target, got {input.dtype}")
    return input, target


def mse_loss(input, target, size_average=None, reduce=None, reduction="mean"):
    """`torch.nn.functional.mse_loss` (broadcasts mismatched shapes, as torch does)."""
    op = "mse_loss"
    reduction = legacy_reduction(size_average, reduce, reduction)
    check_reduction(op, reduction)
    if isinstance(input, Tensor) and isinstance(target, Tensor) and target.shape != input.shape:
        warnings.warn(f"Using a target size ({target.shape}) that is different to the input "
                      f"size ({input.shape}). This will likely lead to incorrect results due "
                      f"to broadcasting. Please ensure they have the same size.", stacklevel=2)
    input, target = _float_pair(op, input, target)
    return MSE.apply(input, target, reduction=reduction)


def binary_cross_entropy_with_logits(input, target, weight=None, size_average=None,
                                     reduce=None, reduction="mean", pos_weight=None):
    """`torch.nn.functional.binary_cross_entropy_with_logits`, numerically stable."""
    op = "binary_cross_entropy_with_logits"
    reduction = legacy_reduction(size_average, reduce, reduction)
    check_reduction(op, reduction)
    if isinstance(input, Tensor) and isinstance(target, Tensor) and target.shape != input.shape:
        raise ValueError(f"{op}: target size {target.shape} must be the same as input size "
                         f"{input.shape}")
    input, target = _float_pair(op, input, target)
    extra = []
    for name, t in (("weight", weight), ("pos_weight", pos_weight)):
        if t is None:
            continue
        if not isinstance(t, Tensor):
            raise TypeError(f"{op}: {name} must be a Tensor or None, got {type(t).__name__}")
        try:
            np.broadcast_shapes(t.shape, input.shape)
        except ValueError:
            raise ValueError(f"{op}: {name} of shape {t.shape} does not broadcast with the "
                             f"input of shape {input.shape}") from None
        extra.append(t.astype(input.dtype) if t.dtype != input.dtype else t)
    return BCEWithLogits.apply(input, target, *extra, has_weight=weight is not None,
                               has_pos_weight=pos_weight is not None, reduction=reduction)


# ----------------------------------------------------------------------------- regression / probability losses

class PairLoss(Function):
    """An elementwise loss of (input, target) with broadcasting, then the reduction:
    l1, smooth_l1 (beta), huber (delta), bce (probabilities; logs clamped at -100 as
    torch) and kl_div (log-probability input; `log_target`). Inputs: x, y, and a weight
    for bce when given. Each kind's derivatives are torch's, including at the kinks."""

    @staticmethod
    def forward(ctx, x, y, *weight, kind, param, reduction):
        xp = xp_of(x)
        t = x.dtype.type
        d = x - y
        if kind == "l1":
            loss = xp.abs(d)
        elif kind == "smooth_l1":
            a = xp.abs(d)
            loss = a if param == 0 else xp.where(a < param, t(0.5) * d * d / t(param),
                                                 a - t(0.5 * param))
        elif kind == "huber":
            a = xp.abs(d)
            loss = xp.where(a < param, t(0.5) * d * d, t(param) * (a - t(0.5 * param)))
        elif kind == "bce":
            log_x = xp.maximum(xp.log(x), -100)
            log_1mx = xp.maximum(xp.log1p(-x), -100)
            loss = -(y * log_x + (1 - y) * log_1mx)
            ctx.logs = (log_x, log_1mx)
        else:   # kl_div
            if param:                                  # log_target
                loss = xp.exp(y) * (y - x)
            else:
                safe = xp.where(y > 0, y, 1)
                loss = xp.where(y > 0, y * (xp.log(safe) - x), 0).astype(x.dtype, copy=False)
        denominator = None
        if weight:
            loss = loss * weight[0]
            if kind == "l1":      # torch: a weighted l1's mean divides by the weights' sum
                denominator = xp.broadcast_to(weight[0], loss.shape).sum()
        ctx.save_for_backward(x, y, weight[0] if weight else None)
        ctx.kind, ctx.param, ctx.reduction = kind, param, reduction
        ctx.size = loss.size if denominator is None else denominator
        ctx.batch = x.shape[0] if x.ndim else 1
        if reduction == "none":
            return loss
        if reduction == "sum":
            return loss.sum()
        if reduction == "batchmean":
            return loss.sum() / t(ctx.batch)
        return loss.mean() if denominator is None else loss.sum() / denominator

    @staticmethod
    def backward(ctx, grad):
        x, y, weight = ctx.saved
        xp = xp_of(x)
        t = x.dtype.type
        if ctx.reduction == "mean":
            grad = grad / ctx.size
        elif ctx.reduction == "batchmean":
            grad = grad / t(ctx.batch)
        g = grad * weight if weight is not None else grad
        d = x - y
        kind, param = ctx.kind, ctx.param
        dy = None
        if kind == "l1":
            dx = xp.sign(d) * g
        elif kind == "smooth_l1":
            dx = (xp.sign(d) if param == 0 else
                  xp.where(d < -param, -1, xp.where(d > param, 1, d / t(param)))) * g
        elif kind == "huber":
            dx = xp.clip(d, -param, param) * g
        elif kind == "bce":
            dx = g * d / xp.maximum((1 - x) * x, t(1e-12))
            log_x, log_1mx = ctx.logs
            dy = g * (log_1mx - log_x)
        elif param:                                    # kl_div, log_target
            dx = -xp.exp(y) * g
            dy = g * xp.exp(y) * (y - x + 1)
        else:
            dx = -y * g
            dy = g * (xp.log(y) + 1 - x)
        if dy is None:
            dy = -dx
        grads = [dx if ctx.needs_input_grad[0] else None,
                 dy if ctx.needs_input_grad[1] else None]
        if weight is not None:
            grads.append(None)      # torch gives no gradient to bce's weight either
        return tuple(grads)


def _pair_loss(op, input, target, kind, param, reduction, weight=None, same_shape=False):
    check_reduction(op, reduction) if reduction != "batchmean" else None
    if isinstance(input, Tensor) and isinstance(target, Tensor) and \
            target.shape != input.shape:
        if same_shape:
            raise ValueError(f"{op}: Using a target size ({target.shape}) that is different "
                             f"to the input size ({input.shape}) is deprecated. Please "
                             f"ensure they have the same size.")
        warnings.warn(f"Using a target size ({target.shape}) that is different to the input "
                      f"size ({input.shape}). This will likely lead to incorrect results due "
                      f"to broadcasting. Please ensure they have the same size.", stacklevel=3)
    input, target = _float_pair(op, input, target)
    extra = ()
    if weight is not None:
        if not isinstance(weight, Tensor):
            raise TypeError(f"{op}: weight must be a Tensor or None, got "
                            f"{type(weight).__name__}")
        extra = (weight.astype(input.dtype) if weight.dtype != input.dtype else weight,)
    return PairLoss.apply(input, target, *extra, kind=kind, param=param, reduction=reduction)


def l1_loss(input, target, size_average=None, reduce=None, reduction="mean", weight=None):
    reduction = legacy_reduction(size_average, reduce, reduction)
    return _pair_loss("l1_loss", input, target, "l1", 0.0, reduction, weight)


def smooth_l1_loss(input, target, size_average=None, reduce=None, reduction="mean",
                   beta=1.0):
    if beta < 0:
        raise RuntimeError("smooth_l1_loss does not support negative values for beta.")
    reduction = legacy_reduction(size_average, reduce, reduction)
    return _pair_loss("smooth_l1_loss", input, target, "smooth_l1", float(beta), reduction)


def huber_loss(input, target, reduction="mean", delta=1.0, weight=None):
    if delta <= 0:
        raise RuntimeError("huber_loss does not support non-positive values for delta.")
    return _pair_loss("huber_loss", input, target, "huber", float(delta), reduction, weight)


def binary_cross_entropy(input, target, weight=None, size_average=None, reduce=None,
                         reduction="mean"):
    """BCE of probabilities (use the with_logits form on raw scores: it is stabler)."""
    op = "binary_cross_entropy"
    reduction = legacy_reduction(size_average, reduce, reduction)
    if isinstance(input, Tensor):
        values = input.data
        if values.size and (float(values.min()) < 0 or float(values.max()) > 1):
            raise RuntimeError(f"{op}: all elements of input should be between 0 and 1")
    return _pair_loss(op, input, target, "bce", 0.0, reduction, weight, same_shape=True)


def kl_div(input, target, size_average=None, reduce=None, reduction="mean",
           log_target=False):
    """KL(target || exp(input)) pointwise: `input` holds log-probabilities; "batchmean"
    divides the sum by the batch size (the mathematically right mean)."""
    reduction = legacy_reduction(size_average, reduce, reduction)
    if reduction == "mean":
        warnings.warn("reduction: 'mean' divides the total loss by both the batch size and "
                      "the support size.'batchmean' divides only by the batch size, and "
                      "aligns with the KL div math definition.'mean' will be changed to "
                      "behave the same as 'batchmean' in the next major release.",
                      stacklevel=2)
    return _pair_loss("kl_div", input, target, "kl_div", bool(log_target), reduction)
