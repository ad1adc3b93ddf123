"""The CUDA path, as far as it can be checked on a machine without a GPU or CuPy.

- importing tinygrad_cv never imports cupy; asking for "cuda" without it is a clear
  RuntimeError that changes no state; `tc.cuda` / `tc.accelerator` answer as torch;
- the device-mixing check runs before any array is touched (its message names the op
  and both devices);
- the optimizer moves state that predates a move of its param, once;
- the CUDA C source of kernels/cuda.py compiles with nvcc (when nvcc is installed), and
  its kernels, compiled for the host with g++ and launched through kernels/cuda.py's own
  wrappers, give the same results as the Numba CPU kernels (when g++ is installed).

On a GPU machine the rest of the suite runs every device-parametrised test on cuda too.
"""
from __future__ import annotations

import ctypes
import shutil
import subprocess
import sys
import textwrap

import numpy as np
import pytest

import tinygrad_cv as tc
from tinygrad_cv import nn, optim
from tests.helpers import requires_cuda

no_gpu = pytest.mark.skipif(tc.cuda.is_available(), reason="a CUDA GPU is present here")


# ----------------------------------------------------------------------------- optional cupy

def test_importing_tinygrad_cv_never_imports_cupy():
    code = textwrap.dedent("""
        import sys
        import tinygrad_cv as tc
        from tinygrad_cv import nn, optim, data, transforms, kernels, models, train  # noqa
        x = tc.randn(2, 3, requires_grad=True)
        (x * 2).sum().backward()
        m = nn.Sequential(nn.Conv2d(1, 2, 3), nn.ReLU(), nn.MaxPool2d(2))
        m(tc.randn(1, 1, 6, 6)).sum().backward()
        assert tc.device("cuda") == "cuda:0"
        assert "cupy" not in sys.modules, "importing/using tinygrad_cv on cpu imported cupy"
        assert "cupyx" not in sys.modules
        print("ok")
    """)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=120)
    assert out.returncode == 0 and "ok" in out.stdout, out.stderr


def test_cuda_is_a_clear_error_when_cupy_cannot_be_imported():
    """Even where CuPy is installed, a broken/blocked import gives the install hint."""
    code = textwrap.dedent("""
        import sys
        sys.modules["cupy"] = None            # `import cupy` now raises ImportError
        import tinygrad_cv as tc
        assert tc.cuda.is_available() is False and tc.cuda.device_count() == 0
        assert tc.accelerator.is_available() is False
        assert tc.accelerator.current_accelerator() is None
        tc.cuda.synchronize()                 # a no-op without a GPU
        try:
            tc.zeros(2, device="cuda")
        except RuntimeError as exc:
            msg = str(exc)
        else:
            raise AssertionError("no error")
        assert "CuPy" in msg and "pip install" in msg and "cuda" in msg, msg
        print("ok")
    """)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=120)
    assert out.returncode == 0 and "ok" in out.stdout, out.stderr


@no_gpu
def test_availability_answers_as_torch_without_a_gpu():
    assert tc.cuda.is_available() is False
    assert tc.cuda.device_count() == 0
    assert tc.accelerator.is_available() is False
    assert tc.accelerator.current_accelerator() is None
    tc.cuda.synchronize()


def _cuda_error(make):
    with pytest.raises(RuntimeError) as info:
        make()
    msg = str(info.value)
    assert "cuda" in msg.lower() and ("CuPy" in msg or "GPU" in msg), msg
    return msg


@no_gpu
@pytest.mark.parametrize("make", [
    lambda: tc.Tensor([1.0], device="cuda"),
    lambda: tc.tensor([1.0], device=tc.device("cuda:0")),
    lambda: tc.zeros(2, device="cuda"),
    lambda: tc.ones(2, 3, device="cuda"),
    lambda: tc.randn(2, device="cuda"),
    lambda: tc.arange(3, device="cuda"),
    lambda: tc.ones(2).to("cuda"),
    lambda: tc.ones(2).to(tc.device("cuda")),
    lambda: tc.ones(2).cuda(),
    lambda: tc.ones(2).to("cuda:1", tc.float64),
], ids=["Tensor", "tensor", "zeros", "ones", "randn", "arange", "to", "to_device_obj",
        "cuda", "to_index_dtype"])
def test_asking_for_cuda_without_gpu_is_a_clear_runtime_error(make):
    _cuda_error(make)


@no_gpu
def test_tensor_to_cuda_changes_nothing_when_it_fails():
    x = tc.Tensor([1.0, 2.0], requires_grad=True)
    data = x.data
    _cuda_error(lambda: x.to("cuda"))
    _cuda_error(lambda: x.cuda())
    assert x.device == "cpu" and x.data is data and x.grad_fn is None and x.grad is None


@no_gpu
def test_module_to_cuda_fails_before_moving_anything():
    model = nn.Sequential(nn.Linear(3, 4), nn.BatchNorm1d(4), nn.Linear(4, 2))
    tensors = list(model.parameters()) + list(model.buffers())
    before = [(t, t.data, t.device_str, t.dtype) for t in tensors]
    _cuda_error(lambda: model.to("cuda"))
    _cuda_error(lambda: model.cuda())
    _cuda_error(lambda: model.to(tc.device("cuda"), tc.float64))
    for t, data, dev, dtype in before:
        assert t.data is data and t.device_str == dev == "cpu" and t.dtype == dtype


@no_gpu
def test_load_with_map_location_cuda_is_a_clear_error(tmp_path):
    tc.save({"w": tc.ones(2)}, tmp_path / "w.st")
    _cuda_error(lambda: tc.load(tmp_path / "w.st", map_location="cuda"))


def test_device_strings_and_objects():
    assert tc.device("cuda") == "cuda:0" == tc.device("cuda", 0)
    assert str(tc.device("cuda:1")) == "cuda:1" and tc.device("cuda:1").index == 1
    assert repr(tc.device("cpu")) == "device(type='cpu')"
    assert tc.device(tc.device("cuda:2")).index == 2
    for bad in ("gpu", "cuda:x", "cpu:0:1"):
        with pytest.raises(ValueError):
            tc.device(bad)


# ----------------------------------------------------------------------------- device mixing

def _pretend_on_gpu(t):
    """Label a CPU tensor as living on cuda:0 (its data stays NumPy): enough to check
    that ops compare devices before touching any array."""
    t.device_str = "cuda:0"
    return t


@pytest.mark.parametrize("op, call", [
    ("add", lambda a, b: a + b), ("mul", lambda a, b: a * b), ("sub", lambda a, b: a - b),
    ("matmul", lambda a, b: a.reshape(1, 2) @ b.reshape(2, 1)),
    ("maximum", lambda a, b: tc.maximum(a, b)), ("where", lambda a, b: tc.where(a > 0, a, b)),
])
def test_mixing_devices_error_names_op_and_both_devices(op, call):
    a = tc.ones(2, requires_grad=True)
    b = _pretend_on_gpu(tc.ones(2))
    with pytest.raises(RuntimeError) as info:
        call(a, b)
    msg = str(info.value)
    assert op in msg and "cpu" in msg and "cuda:0" in msg and "same device" in msg, msg
    assert a.grad is None and a.grad_fn is None


def test_check_same_device_message():
    from tinygrad_cv.backend import check_same_device
    assert check_same_device("add", ["cuda:0", "cuda:0"]) == "cuda:0"
    with pytest.raises(RuntimeError, match=r"cat: expected all tensors on the same device, "
                                           r"but found tensors on cpu and cuda:0"):
        check_same_device("cat", ["cpu", "cpu", "cuda:0"])


# ----------------------------------------------------------------------------- optimizer state

@pytest.mark.parametrize("make", [lambda p: optim.SGD(p, lr=0.1, momentum=0.9),
                                  lambda p: optim.Adam(p), lambda p: optim.Adadelta(p)],
                         ids=["SGD", "Adam", "Adadelta"])
def test_optimizer_moves_old_state_to_its_params_device_once(make, monkeypatch):
    """State made before its param moved follows the param at the next step (simulated:
    the state is labelled as living on another device; the move is recorded)."""
    import tinygrad_cv.optim.optimizer as optimizer_module

    p = tc.Tensor(np.ones(3, np.float32), requires_grad=True)
    opt = make([p])
    p.grad = tc.ones(3)
    opt.step()
    state = opt.state[p]
    moved_keys = [k for k, v in state.items() if isinstance(v, tc.Tensor) and k != "step"]
    for key in moved_keys:
        _pretend_on_gpu(state[key])
    moves = []
    real_transfer = optimizer_module.transfer

    def recording_transfer(arr, dev):
        moves.append(dev)
        return real_transfer(arr, dev)

    monkeypatch.setattr(optimizer_module, "transfer", recording_transfer)
    opt.step()
    assert moves == ["cpu"] * len(moved_keys)
    assert all(state[k].device == "cpu" for k in moved_keys)
    if "step" in state:
        assert state["step"].device == "cpu" and state["step"].item() == 2
    opt.step()                                     # nothing left to move
    assert moves == ["cpu"] * len(moved_keys)


def test_state_is_created_on_the_params_device(device):
    p = tc.Tensor(np.ones(3, np.float32), requires_grad=True, device=device)
    for opt in (optim.SGD([p], lr=0.1, momentum=0.9), optim.Adam([p]), optim.Adadelta([p])):
        p.grad = tc.ones(3, device=device)
        opt.step()
        for key, value in opt.state[p].items():
            assert value.device == ("cpu" if key == "step" else device), key


@requires_cuda
def test_module_to_cuda_and_back_keeps_identity_and_optimizer_state_follows():
    tc.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(1, 2, 3), nn.BatchNorm2d(2), nn.ReLU(), nn.Flatten(),
                          nn.Linear(8, 3))
    params = list(model.parameters())
    opt = optim.Adam(model.parameters(), lr=0.01)
    x, y = tc.randn(4, 1, 4, 4), tc.tensor([0, 1, 2, 0])
    tc.nn.functional.cross_entropy(model(x), y).backward()
    opt.step()
    model.to("cuda")
    assert all(a is b for a, b in zip(params, model.parameters()))
    assert all(t.device == "cuda" for t in list(model.parameters()) + list(model.buffers()))
    opt.zero_grad()
    tc.nn.functional.cross_entropy(model(x.cuda()), y.cuda()).backward()
    opt.step()
    for p in params:
        for key, value in opt.state[p].items():
            assert value.device == ("cpu" if key == "step" else "cuda:0")
    model.cpu()
    assert all(t.device == "cpu" for t in list(model.parameters()) + list(model.buffers()))


def test_batchnorm_counts_batches_in_place_without_host_reads(device):
    bn = nn.BatchNorm1d(3).to(device)
    counter = bn.num_batches_tracked
    for _ in range(3):
        bn(tc.randn(4, 3, device=device))
    assert counter is bn.num_batches_tracked and counter.item() == 3
    cumulative = nn.BatchNorm1d(3, momentum=None).to(device)
    xs = [tc.randn(5, 3, device=device) for _ in range(3)]
    for x in xs:
        cumulative(x)
    expected = np.mean([x.numpy().mean(0) for x in xs], axis=0)
    np.testing.assert_allclose(cumulative.running_mean.numpy(), expected, rtol=1e-5, atol=1e-6)


def test_cupy_generator_adapter_adds_normal():
    from tinygrad_cv.random import _CupyGenerator
    gen = _CupyGenerator(np.random.default_rng(5))
    draws = gen.normal(2.0, 3.0, (1000,))
    reference = 2.0 + 3.0 * np.random.default_rng(5).standard_normal((1000,))
    np.testing.assert_allclose(draws, reference)
    assert gen.random((2,)).shape == (2,)            # everything else is delegated


# ----------------------------------------------------------------------------- CUDA kernels

def _cuda_source(c_type):
    from tinygrad_cv.kernels import gpu as cuda_kernels
    return cuda_kernels._SOURCE.replace("TYPE", c_type, 1)


@pytest.mark.skipif(shutil.which("nvcc") is None, reason="nvcc (CUDA toolkit) not installed")
@pytest.mark.parametrize("c_type", ["float", "double"])
def test_cuda_kernel_source_compiles_with_nvcc(c_type, tmp_path):
    src = tmp_path / f"kernels_{c_type}.cu"
    src.write_text(_cuda_source(c_type))
    out = subprocess.run(["nvcc", "--ptx", "-arch=compute_80", "-o",
                          str(tmp_path / "k.ptx"), str(src)],
                         capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    ptx = (tmp_path / "k.ptx").read_text()
    from tinygrad_cv.kernels import gpu as cuda_kernels
    for name in cuda_kernels._KERNEL_NAMES:
        assert f".entry {name}(" in ptx, f"kernel {name} missing from the PTX"


_HOST_PRELUDE = r"""
#include <cstring>
#define __global__
#define __device__
struct Dim3 { long long x; };
static const Dim3 blockIdx = {0}, threadIdx = {0}, blockDim = {1}, gridDim = {1};
static inline double __longlong_as_double(long long v) { double d; memcpy(&d, &v, 8); return d; }
template <class T> static inline T atomicAdd(T* p, T v) { T old = *p; *p += v; return old; }
"""


@pytest.fixture(scope="module")
def host_cuda_kernels(tmp_path_factory):
    """kernels/cuda.py with its CUDA C compiled for the host (one 'thread', so each
    grid-stride loop runs every index in turn) and `_launch` calling it via ctypes."""
    if shutil.which("g++") is None:
        pytest.skip("g++ not installed")
    from tinygrad_cv.kernels import gpu as cuda_kernels
    libs = {}
    for dtype, c_type in ((np.float32, "float"), (np.float64, "double")):
        folder = tmp_path_factory.mktemp(f"host_{c_type}")
        src = folder / "k.cpp"
        src.write_text(_HOST_PRELUDE + _cuda_source(c_type))
        out = subprocess.run(["g++", "-O1", "-shared", "-fPIC", "-o", str(folder / "k.so"),
                              str(src)], capture_output=True, text=True, timeout=300)
        if out.returncode != 0:
            pytest.fail(f"the CUDA source does not compile for the host:\n{out.stderr}")
        libs[np.dtype(dtype).name] = ctypes.CDLL(str(folder / "k.so"))

    def host_launch(name, dtype, total, *args):
        if total <= 0:
            return
        converted = []
        for a in args:
            if isinstance(a, np.ndarray):
                assert a.flags.c_contiguous
                converted.append(ctypes.c_void_p(a.ctypes.data))
            else:
                assert isinstance(a, (int, bool, np.integer)), (name, type(a))
                converted.append(ctypes.c_longlong(int(a)))
        getattr(libs[np.dtype(dtype).name], name)(*converted)

    original = cuda_kernels._launch
    cuda_kernels._launch = host_launch
    yield cuda_kernels
    cuda_kernels._launch = original


CONV_GEOMETRIES = [  # planes, H, W, kh, kw, sh, sw, ph, pw, dh, dw
    (3, 7, 6, 3, 3, 1, 1, 0, 0, 1, 1),
    (2, 8, 9, 3, 2, 2, 1, 1, 2, 1, 1),
    (4, 9, 9, 3, 3, 2, 2, 2, 1, 2, 2),
    (1, 5, 5, 5, 5, 1, 1, 2, 2, 1, 1),
    (2, 6, 7, 2, 3, 3, 2, 0, 1, 1, 2),
]


def _out_size(size, k, s, p, d):
    return (size + 2 * p - d * (k - 1) - 1) // s + 1


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("geom", CONV_GEOMETRIES)
def test_cuda_im2col_col2im_match_cpu_kernels(host_cuda_kernels, geom, dtype):
    from tinygrad_cv.kernels import cpu
    planes, h, w, kh, kw, sh, sw, ph, pw, dh, dw = geom
    oh, ow = _out_size(h, kh, sh, ph, dh), _out_size(w, kw, sw, pw, dw)
    args = (oh, ow, kh, kw, sh, sw, ph, pw, dh, dw)
    rng = np.random.default_rng(0)
    x = rng.standard_normal((planes, h, w)).astype(dtype)
    cols_cpu = np.full((planes, kh * kw, oh * ow), np.nan, dtype)
    cols_gpu = np.full_like(cols_cpu, np.nan)
    cpu.im2col(x, cols_cpu, *args)
    host_cuda_kernels.im2col(x, cols_gpu, *args)
    np.testing.assert_array_equal(cols_gpu, cols_cpu)
    dcols = rng.standard_normal(cols_cpu.shape).astype(dtype)
    dx_cpu = np.full_like(x, np.nan)
    dx_gpu = np.full_like(x, np.nan)
    cpu.col2im(dcols, dx_cpu, *args)
    host_cuda_kernels.col2im(dcols, dx_gpu, *args)
    np.testing.assert_allclose(dx_gpu, dx_cpu, rtol=1e-5 if dtype == np.float32 else 1e-12,
                               atol=1e-5 if dtype == np.float32 else 1e-12)


POOL_GEOMETRIES = [  # planes, H, W, kh, kw, sh, sw, ph, pw, dh, dw
    (3, 6, 6, 2, 2, 2, 2, 0, 0, 1, 1),
    (2, 7, 5, 3, 3, 2, 1, 1, 1, 1, 1),
    (2, 9, 8, 3, 2, 1, 2, 1, 0, 2, 1),
    (1, 4, 4, 4, 4, 1, 1, 2, 2, 1, 1),
]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("geom", POOL_GEOMETRIES)
def test_cuda_pool_kernels_match_cpu_kernels(host_cuda_kernels, geom, dtype):
    from tinygrad_cv.kernels import cpu
    planes, h, w, kh, kw, sh, sw, ph, pw, dh, dw = geom
    oh, ow = _out_size(h, kh, sh, ph, dh), _out_size(w, kw, sw, pw, dw)
    rng = np.random.default_rng(1)
    x = rng.standard_normal((planes, h, w)).astype(dtype)
    x[0, 0, :2] = x[0, 0, 2]                       # ties: the first maximum wins
    results = {}
    for name, k in (("cpu", cpu), ("cuda", host_cuda_kernels)):
        out = np.full((planes, oh, ow), np.nan, dtype)
        idx = np.full((planes, oh, ow), -7, np.int64)
        k.max_pool2d_forward(x, out, idx, kh, kw, sh, sw, ph, pw, dh, dw)
        grad_out = np.arange(out.size, dtype=dtype).reshape(planes, -1) / 7
        grad_in = np.full((planes, h * w), np.nan, dtype)
        k.scatter_to_indices(grad_out, idx.reshape(planes, -1), grad_in)
        results[name] = [out, idx, grad_in]
        if dh == dw == 1:
            for include, override in ((True, 0), (False, 0), (True, 3)):
                avg = np.full((planes, oh, ow), np.nan, dtype)
                k.avg_pool2d_forward(x, avg, kh, kw, sh, sw, ph, pw, include, override)
                g_in = np.full((planes, h, w), np.nan, dtype)
                k.avg_pool2d_backward(np.ascontiguousarray(avg), g_in, kh, kw, sh, sw, ph, pw,
                                      include, override)
                results[name] += [avg, g_in]
    for a, b in zip(results["cuda"], results["cpu"]):
        np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("shape, out_size", [((2, 7, 5), (3, 2)), ((1, 4, 4), (4, 4)),
                                             ((3, 5, 9), (1, 4)), ((1, 3, 3), (5, 5))])
def test_cuda_adaptive_pool_kernels_match_cpu_kernels(host_cuda_kernels, shape, out_size,
                                                      dtype):
    from tinygrad_cv.kernels import cpu
    planes = shape[0]
    x = np.random.default_rng(2).standard_normal(shape).astype(dtype)
    results = {}
    for name, k in (("cpu", cpu), ("cuda", host_cuda_kernels)):
        avg = np.full((planes,) + out_size, np.nan, dtype)
        k.adaptive_avg_pool2d_forward(x, avg)
        g_in = np.full(shape, np.nan, dtype)
        k.adaptive_avg_pool2d_backward(np.ascontiguousarray(avg), g_in)
        mx = np.full((planes,) + out_size, np.nan, dtype)
        idx = np.full((planes,) + out_size, -7, np.int64)
        k.adaptive_max_pool2d_forward(x, mx, idx)
        results[name] = [avg, g_in, mx, idx]
    for a, b in zip(results["cuda"], results["cpu"]):
        np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-6)


def test_cuda_kernels_reject_other_dtypes_and_non_contiguous(host_cuda_kernels):
    x = np.zeros((1, 4, 4), np.float16)
    with pytest.raises(TypeError, match="float32 or float64"):
        host_cuda_kernels._kernel("im2col", x.dtype)
    y = np.zeros((1, 4, 8), np.float32)[:, :, ::2]
    with pytest.raises(ValueError, match="C-contiguous"):
        host_cuda_kernels.im2col(y, np.zeros((1, 9, 4), np.float32), 2, 2, 3, 3, 1, 1, 0, 0,
                                 1, 1)
