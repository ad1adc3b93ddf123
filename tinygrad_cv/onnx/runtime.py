"""Running an exported model in onnxruntime (for `predict --onnx` and export's check);
onnxruntime is imported only when a function here runs."""
from __future__ import annotations

import json

METADATA_KEY = "tinygrad_cv"
"""The metadata_props key holding the weights file's metadata (JSON) in exported models."""


def import_onnxruntime():
    try:
        import onnxruntime
    except ImportError:
        raise ImportError("running an ONNX model needs onnxruntime: "
                          "pip install 'tinygrad_cv[onnx]'") from None
    return onnxruntime


def open_session(source):
    """An onnxruntime CPU session for a path or the model's bytes."""
    ort = import_onnxruntime()
    options = ort.SessionOptions()
    options.log_severity_level = 3            # errors only: no warnings on stderr
    return ort.InferenceSession(source, sess_options=options,
                                providers=["CPUExecutionProvider"])


def recorded_metadata(session):
    """The weights metadata `export` stored in the model ({} when there is none)."""
    props = session.get_modelmeta().custom_metadata_map
    text = props.get(METADATA_KEY)
    if not text:
        return {}
    value = json.loads(text)
    return value if isinstance(value, dict) else {}


def run(session, batch):
    """The model's first output on `batch` (a NumPy array) through its only input. A
    model exported with a fixed batch size N gets the batch in chunks of N (the last
    one padded with zeros, its padding rows dropped from the result)."""
    import numpy as np
    (inp,) = session.get_inputs()
    fixed = inp.shape[0] if inp.shape and isinstance(inp.shape[0], int) else None
    if fixed is None or fixed == len(batch):
        return session.run(None, {inp.name: batch})[0]
    parts = []
    for start in range(0, len(batch), fixed):
        chunk = batch[start:start + fixed]
        rows = len(chunk)
        if rows < fixed:
            chunk = np.concatenate([chunk, np.zeros((fixed - rows,) + chunk.shape[1:],
                                                    chunk.dtype)])
        parts.append(session.run(None, {inp.name: chunk})[0][:rows])
    return np.concatenate(parts)
