"""save/load: safetensors round trips, PyTorch interop, optimizer state, atomic writes."""
from __future__ import annotations

import io
import math
import os

import numpy as np
import pytest
import safetensors
import safetensors.numpy

from tinygrad_cv import optim, serialization
from tinygrad_cv.serialization import load, save
from tinygrad_cv.tensor import Tensor
from tests.helpers import requires_torch, torch

DTYPES = [np.float32, np.float64, np.int64, np.int32, np.uint8, np.float16, np.bool_]


def sample_state_dict(device="cpu"):
    rng = np.random.default_rng(0)
    arrays = {
        "conv1.weight": rng.standard_normal((4, 1, 3, 3)).astype(np.float32),
        "conv1.bias": rng.standard_normal(4).astype(np.float32),
        "fc.weight": rng.standard_normal((2, 5)).astype(np.float64),
        "bn.num_batches_tracked": np.array(7, dtype=np.int64),     # 0-d
        "bn.running_mean": np.zeros(0, dtype=np.float32),          # empty
        "a.first_in_sorted_order": np.arange(6, dtype=np.int64).reshape(2, 3),
    }
    return {key: Tensor(a, dtype=a.dtype, device=device) for key, a in arrays.items()}


def assert_same_tensors(loaded, original):
    assert list(loaded) == list(original)
    for key, value in original.items():
        assert isinstance(loaded[key], Tensor), key
        assert loaded[key].dtype == value.dtype, key
        assert loaded[key].shape == value.shape, key
        np.testing.assert_array_equal(loaded[key].numpy(), value.numpy(), err_msg=key)


# ----------------------------------------------------------------------------- round trips
def test_flat_state_dict_round_trip_keeps_keys_order_dtypes_and_shapes(tmp_path, device):
    sd = sample_state_dict(device)
    path = tmp_path / "model.safetensors"
    save(sd, path)
    loaded = load(path)
    assert_same_tensors(loaded, sd)
    assert all(t.device == "cpu" and not t.requires_grad for t in loaded.values())


@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: np.dtype(d).name)
@pytest.mark.parametrize("shape", [(), (0,), (3,), (2, 0, 4), (2, 3, 4)])
def test_round_trip_of_every_dtype_and_shape(tmp_path, dtype, shape):
    rng = np.random.default_rng(1)
    arr = (rng.standard_normal(shape) * 10).astype(dtype)
    save({"x": Tensor(arr, dtype=arr.dtype)}, tmp_path / "x.st")
    out = load(tmp_path / "x.st")["x"]
    assert out.dtype == np.dtype(dtype) and out.shape == shape
    np.testing.assert_array_equal(out.numpy(), arr)


def test_parameters_and_non_contiguous_tensors_save(tmp_path, device):
    from tinygrad_cv.nn.parameter import Parameter
    base = np.arange(12, dtype=np.float32).reshape(3, 4)
    weight = Parameter(Tensor(base, device=device))
    transposed = Tensor(base, device=device).T   # a non-contiguous view
    save({"weight": weight, "t": transposed}, tmp_path / "p.st")
    loaded = load(tmp_path / "p.st")
    np.testing.assert_array_equal(loaded["weight"].numpy(), base)
    np.testing.assert_array_equal(loaded["t"].numpy(), base.T)


def test_nested_structures_round_trip(tmp_path):
    obj = {
        "tensors": [Tensor(np.float32(3.5)), Tensor(np.zeros((0, 2), np.float32))],
        "array": np.arange(4, dtype=np.int16),
        "scalars": (1, 2.5, "x", None, True, math.inf),
        "numpy_scalar": np.float32(0.25),
        7: {"nested": {"deep": Tensor(np.ones(2, np.float64), dtype=np.float64)}},
        "7.nested.deep": Tensor(np.full(2, 5.0, np.float32)),   # the same dotted path
        None: [],
    }
    save(obj, tmp_path / "n.st")
    out = load(tmp_path / "n.st")
    assert list(out) == list(obj)
    assert out["tensors"][0].shape == () and out["tensors"][0].item() == 3.5
    assert out["tensors"][1].shape == (0, 2)
    assert isinstance(out["array"], np.ndarray) and out["array"].dtype == np.int16
    np.testing.assert_array_equal(out["array"], obj["array"])
    assert out["scalars"] == (1, 2.5, "x", None, True, math.inf)
    assert isinstance(out["scalars"], tuple) and isinstance(out["scalars"][0], int)
    assert out["numpy_scalar"] == 0.25
    assert out[7]["nested"]["deep"].dtype == np.float64
    np.testing.assert_array_equal(out[7]["nested"]["deep"].numpy(), [1.0, 1.0])
    np.testing.assert_array_equal(out["7.nested.deep"].numpy(), [5.0, 5.0])
    assert out[None] == []


def test_single_tensor_and_empty_dict(tmp_path):
    save(Tensor(np.arange(3, dtype=np.int64)), tmp_path / "t.st")
    np.testing.assert_array_equal(load(tmp_path / "t.st").numpy(), [0, 1, 2])
    save({}, tmp_path / "e.st")
    assert load(tmp_path / "e.st") == {}


def test_file_objects(tmp_path):
    buffer = io.BytesIO()
    save(sample_state_dict(), buffer)
    buffer.seek(0)
    assert_same_tensors(load(buffer), sample_state_dict())


def test_layout_is_documented_plain_safetensors(tmp_path):
    path = tmp_path / "m.st"
    save(sample_state_dict(), path)
    with safetensors.safe_open(str(path), framework="numpy") as f:
        assert sorted(f.keys()) == sorted(sample_state_dict())
        assert f.metadata()["format"] == "pt"
    params = [Tensor(np.ones(3, np.float32), requires_grad=True)]
    opt = optim.SGD(params, lr=0.1, momentum=0.9)
    params[0].grad = Tensor(np.ones(3, np.float32))
    opt.step()
    save(opt.state_dict(), path)
    with safetensors.safe_open(str(path), framework="numpy") as f:
        assert list(f.keys()) == ["state.0.momentum_buffer"]
        assert serialization.STRUCTURE_METADATA in f.metadata()


def test_map_location(tmp_path, device):
    save(sample_state_dict(), tmp_path / "m.st")
    loaded = load(tmp_path / "m.st", map_location=device)
    assert all(t.device == device for t in loaded.values())
    assert_same_tensors(loaded, sample_state_dict())
    with pytest.raises(TypeError, match="map_location"):
        load(tmp_path / "m.st", map_location={"cuda:0": "cpu"})


# ----------------------------------------------------------------------------- optimizers
@pytest.mark.parametrize("make", [
    lambda p: optim.SGD(p, lr=0.1, momentum=0.9, nesterov=True),
    lambda p: optim.Adam(p, lr=0.01, amsgrad=True),
    lambda p: optim.AdamW(p),
    lambda p: optim.Adadelta(p, weight_decay=0.1),
], ids=["SGD", "Adam", "AdamW", "Adadelta"])
def test_optimizer_state_dict_round_trip(tmp_path, make, device):
    rng = np.random.default_rng(2)
    params = [Tensor(rng.standard_normal(s).astype(np.float32), requires_grad=True,
                     device=device) for s in [(3, 2), (2,)]]
    opt = make(params)
    for _ in range(3):
        for p in params:
            p.grad = Tensor(rng.standard_normal(p.shape).astype(np.float32), device=device)
        opt.step()
    sd = opt.state_dict()
    save(sd, tmp_path / "opt.st")
    out = load(tmp_path / "opt.st")
    assert out["param_groups"] == sd["param_groups"]
    assert list(out["state"]) == list(sd["state"]) == [0, 1]
    for index, values in sd["state"].items():
        assert list(out["state"][index]) == list(values)
        for key, value in values.items():
            assert out["state"][index][key].dtype == value.dtype
            assert out["state"][index][key].shape == value.shape
            np.testing.assert_array_equal(out["state"][index][key].numpy(), value.numpy())
    fresh = make(params)
    fresh.load_state_dict(out)            # loads cleanly into a fresh optimizer ...
    for values in fresh.state.values():   # ... with the state on the params' device
        for key, value in values.items():
            assert value.device == ("cpu" if key == "step" else device), key


# ----------------------------------------------------------------------------- PyTorch
@requires_torch
def test_file_saved_here_loads_in_pytorch(tmp_path):
    import safetensors.torch
    sd = sample_state_dict()
    save(sd, tmp_path / "m.safetensors")
    theirs = safetensors.torch.load_file(str(tmp_path / "m.safetensors"))
    assert sorted(theirs) == sorted(sd)
    for key, value in sd.items():
        assert tuple(theirs[key].shape) == value.shape
        assert str(theirs[key].dtype).removeprefix("torch.") == value.dtype.name
        np.testing.assert_array_equal(theirs[key].numpy(), value.numpy())


@requires_torch
def test_file_saved_by_pytorch_loads_here(tmp_path):
    import safetensors.torch
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Conv2d(1, 4, 3), torch.nn.BatchNorm2d(4),
                              torch.nn.Flatten(), torch.nn.Linear(4 * 26 * 26, 10))
    torch_sd = net.state_dict()
    safetensors.torch.save_file(torch_sd, str(tmp_path / "net.safetensors"))
    ours = load(tmp_path / "net.safetensors")
    assert sorted(ours) == sorted(torch_sd)
    for key, value in torch_sd.items():
        assert isinstance(ours[key], Tensor)
        assert ours[key].shape == tuple(value.shape)
        assert ours[key].dtype.name == str(value.dtype).removeprefix("torch.")
        np.testing.assert_array_equal(ours[key].numpy(), value.numpy())


@requires_torch
def test_pickle_checkpoints_are_refused_with_a_hint(tmp_path):
    torch.save({"w": torch.zeros(2)}, tmp_path / "model.pt")
    with pytest.raises(ValueError, match="pickle"):
        load(tmp_path / "model.pt")


# ----------------------------------------------------------------------------- failures
def test_a_failed_write_leaves_the_old_file_intact(tmp_path, monkeypatch):
    path = tmp_path / "model.safetensors"
    save(sample_state_dict(), path)
    before = path.read_bytes()

    def crash(fd):   # the temporary file is half-way to disk when the "crash" happens
        raise OSError("simulated crash during write")

    monkeypatch.setattr(os, "fsync", crash)
    bigger = dict(sample_state_dict(), extra=Tensor(np.ones(1000, np.float32)))
    with pytest.raises(OSError, match="simulated crash"):
        save(bigger, path)
    monkeypatch.undo()
    assert path.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model.safetensors"]
    assert_same_tensors(load(path), sample_state_dict())


def test_a_failed_rename_leaves_no_temporary_file(tmp_path, monkeypatch):
    path = tmp_path / "new.safetensors"

    def fail(src, dst):
        raise OSError("simulated rename failure")

    monkeypatch.setattr(os, "replace", fail)
    with pytest.raises(OSError):
        save(sample_state_dict(), path)
    assert list(tmp_path.iterdir()) == []


def test_new_files_get_ordinary_permissions(tmp_path):
    umask = os.umask(0)
    os.umask(umask)
    save(sample_state_dict(), tmp_path / "m.st")
    assert os.stat(tmp_path / "m.st").st_mode & 0o777 == 0o666 & ~umask


@pytest.mark.parametrize("obj, where", [
    (object(), "<root>"),
    ({"model": {"w": Tensor(np.ones(2, np.float32)), "fn": print}}, "model.fn"),
    ({"s": {1, 2}}, "s"),
    ([1, 2, lambda: 0], "2"),
    ({(1, 2): Tensor(np.ones(2, np.float32))}, "<root>"),
])
def test_unsupported_objects_raise_before_writing(tmp_path, obj, where):
    path = tmp_path / "x.st"
    with pytest.raises(TypeError, match=f"save: cannot save .* at '{where}'"):
        save(obj, path)
    assert not path.exists()


def test_loading_garbage_raises_a_clear_error(tmp_path):
    path = tmp_path / "junk.st"
    path.write_bytes(b"this is not a safetensors file at all")
    with pytest.raises(ValueError, match="not a valid safetensors file"):
        load(path)
    with pytest.raises(FileNotFoundError):
        load(tmp_path / "missing.st")


@requires_torch
def test_dtypes_numpy_lacks_give_a_clear_error(tmp_path):
    import safetensors.torch
    safetensors.torch.save_file({"w": torch.zeros(2, dtype=torch.bfloat16)},
                                str(tmp_path / "bf16.st"))
    with pytest.raises(TypeError, match="tensor 'w' .* dtype NumPy cannot hold"):
        load(tmp_path / "bf16.st")


def test_save_metadata_round_trips_and_load_ignores_it(tmp_path):
    from tinygrad_cv.serialization import load_metadata
    path = tmp_path / "w.safetensors"
    info = {"model": "mlp", "dataset": "mnist", "classes": ["0", "1"], "mean": [0.1307]}
    save({"a": Tensor([1.0, 1.0])}, path, metadata=info)
    assert load_metadata(path) == info
    assert list(load(path)) == ["a"]
    save({"a": Tensor([1.0])}, path)
    assert load_metadata(path) == {}
    with pytest.raises(TypeError, match="JSON"):
        save({"a": Tensor([1.0])}, path, metadata={"x": object()})
