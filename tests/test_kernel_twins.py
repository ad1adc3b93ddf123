"""Which CPU kernels have CuPy twins in kernels/gpu.py, pinned: adding a CPU kernel means
adding its twin or listing it here as CPU-only, with what the GPU runs instead."""
from __future__ import annotations

import inspect

from tinygrad_cv.kernels import cpu, gpu

CPU_ONLY = {
    "channel_stats": "batch norm on the GPU uses array ops (ops/normalization.py)",
    "scale_shift": "idem",
    "channel_grad_sums": "idem",
    "batch_norm_input_grad": "idem",
    "depthwise_forward": "the GPU runs depthwise convs as grouped im2col + GEMM",
    "depthwise_input_grad": "idem",
    "depthwise_weight_grad": "idem",
    "bias_relu": "the GPU adds the bias with a broadcast array op",
    "relu_inplace": "ops call it on NumPy arrays only; the GPU uses relu_forward",
    "relu_backward_inplace": "ops call it on NumPy arrays only",
    "hardtanh_forward": "the GPU clips with an array op (ops/relu.py)",
    "hardtanh_backward": "the GPU selects with an array op",
    "max_pool2d_tiles_forward": "non-overlapping 2x2 fast path; the GPU uses max_pool2d_forward",
    "max_pool2d_tiles_backward": "its backward; the GPU uses scatter_to_indices",
    "max_pool2d_values_inside": "values-only no-grad path; the GPU uses max_pool2d_forward",
}


def _kernels(module):
    names = getattr(module, "__all__", None) or [
        name for name, obj in vars(module).items()
        if inspect.isfunction(obj) and not name.startswith("_")
        and obj.__module__ == module.__name__]
    return {name for name in names if callable(getattr(module, name))}


def test_every_cpu_kernel_has_a_gpu_twin_or_is_listed_cpu_only():
    cpu_kernels, gpu_kernels = _kernels(cpu), _kernels(gpu)
    assert cpu_kernels - gpu_kernels == set(CPU_ONLY)
    assert gpu_kernels <= cpu_kernels, "a GPU kernel without a CPU original"


def test_twins_take_the_same_arguments():
    for name in _kernels(cpu) - set(CPU_ONLY):
        cpu_args = list(inspect.signature(getattr(cpu, name).__wrapped__).parameters)
        gpu_args = list(inspect.signature(getattr(gpu, name)).parameters)
        assert cpu_args == gpu_args, name
