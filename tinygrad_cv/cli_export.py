"""`export WEIGHTS OUT.onnx`: a weights file's model as ONNX (with the weights' metadata),
checked by running it in onnxruntime when installed."""
from __future__ import annotations

import argparse
import json
import sys

import numpy as np

from . import serialization
from .autograd import no_grad
from .cli_args import apply_threads
from .cli_weights import check_writable, model_from_weights
from .errors import UserError
from .train import weights_metadata


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
    check_writable(args.output, "export: the output")
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
