"""CuPy twins of `kernels/cpu/`: the same functions, arguments and results on the GPU.

The CUDA C source below is compiled lazily, once per dtype (float / double), on the
first call, and cached for the process (CuPy also caches the binary on disk). `cupy` is
imported only inside functions: importing tinygrad_cv never imports it.

Parallel layout (one thread per element, grid-stride loops, 64-bit indices):
- im2col: one thread per column entry (coalesced writes);
- col2im: one thread per input pixel, gathering every (tap, output) that read it, so the
  result is written once with no atomics (and is deterministic);
- pooling forward: one thread per output; pooling backward: one thread per output
  gradient, added into the input with atomicAdd (double atomics need sm_60+), after
  zeroing the gradient array.
Geometry conventions are the CPU module's (see its docstring).
"""
from __future__ import annotations

import numpy as np

_THREADS = 256
_modules = {}   # dtype name -> compiled cupy.RawModule

_SOURCE = r"""
typedef TYPE T;

__device__ inline long long lmin(long long a, long long b) { return a < b ? a : b; }
__device__ inline long long lmax(long long a, long long b) { return a > b ? a : b; }
__device__ inline T negative_infinity() {
    return (T)(-__longlong_as_double(0x7ff0000000000000LL));
}

__device__ inline void valid_range(long long start, long long step, long long size,
                                   long long count, long long* lo, long long* hi) {
    long long a = 0;
    if (start < 0) a = (-start + step - 1) / step;
    long long last = size - 1 - start;
    long long b = last >= 0 ? last / step + 1 : 0;
    if (b > count) b = count;
    if (a > count) a = count;
    if (b < a) b = a;
    *lo = a; *hi = b;
}

extern "C" __global__ void im2col(
        const T* x, T* cols, long long planes, long long height, long long width,
        long long out_h, long long out_w, long long kernel_h, long long kernel_w,
        long long stride_h, long long stride_w, long long pad_h, long long pad_w,
        long long dil_h, long long dil_w) {
    long long positions = out_h * out_w, taps = kernel_h * kernel_w;
    long long total = planes * taps * positions;
    for (long long idx = blockIdx.x * (long long)blockDim.x + threadIdx.x; idx < total;
         idx += (long long)blockDim.x * gridDim.x) {
        long long pos = idx % positions;
        long long tap = (idx / positions) % taps;
        long long p = idx / (positions * taps);
        long long ih = (pos / out_w) * stride_h + (tap / kernel_w) * dil_h - pad_h;
        long long iw = (pos % out_w) * stride_w + (tap % kernel_w) * dil_w - pad_w;
        bool inside = ih >= 0 && ih < height && iw >= 0 && iw < width;
        cols[idx] = inside ? x[(p * height + ih) * width + iw] : (T)0;
    }
}

extern "C" __global__ void col2im(
        const T* cols, T* dx, long long planes, long long height, long long width,
        long long out_h, long long out_w, long long kernel_h, long long kernel_w,
        long long stride_h, long long stride_w, long long pad_h, long long pad_w,
        long long dil_h, long long dil_w) {
    long long positions = out_h * out_w, taps = kernel_h * kernel_w;
    long long total = planes * height * width;
    for (long long idx = blockIdx.x * (long long)blockDim.x + threadIdx.x; idx < total;
         idx += (long long)blockDim.x * gridDim.x) {
        long long iw = idx % width;
        long long ih = (idx / width) % height;
        long long p = idx / (width * height);
        T acc = 0;
        for (long long i = 0; i < kernel_h; ++i) {
            long long h = ih + pad_h - i * dil_h;       /* = oh * stride_h */
            if (h < 0 || h % stride_h != 0) continue;
            long long oh = h / stride_h;
            if (oh >= out_h) continue;
            for (long long j = 0; j < kernel_w; ++j) {
                long long w = iw + pad_w - j * dil_w;   /* = ow * stride_w */
                if (w < 0 || w % stride_w != 0) continue;
                long long ow = w / stride_w;
                if (ow >= out_w) continue;
                acc += cols[(p * taps + i * kernel_w + j) * positions + oh * out_w + ow];
            }
        }
        dx[idx] = acc;
    }
}

extern "C" __global__ void max_pool2d_forward(
        const T* x, T* out, long long* indices, long long planes, long long height,
        long long width, long long out_h, long long out_w, long long kernel_h,
        long long kernel_w, long long stride_h, long long stride_w, long long pad_h,
        long long pad_w, long long dil_h, long long dil_w) {
    long long total = planes * out_h * out_w;
    for (long long idx = blockIdx.x * (long long)blockDim.x + threadIdx.x; idx < total;
         idx += (long long)blockDim.x * gridDim.x) {
        long long ow = idx % out_w;
        long long oh = (idx / out_w) % out_h;
        long long p = idx / (out_w * out_h);
        long long h0 = oh * stride_h - pad_h, w0 = ow * stride_w - pad_w;
        long long i_lo, i_hi, j_lo, j_hi;
        valid_range(h0, dil_h, height, kernel_h, &i_lo, &i_hi);
        valid_range(w0, dil_w, width, kernel_w, &j_lo, &j_hi);
        const T* plane = x + p * height * width;
        T best = negative_infinity();
        long long best_index = -1;
        if (i_lo < i_hi && j_lo < j_hi) best_index = (h0 + i_lo * dil_h) * width + w0 + j_lo * dil_w;
        for (long long i = i_lo; i < i_hi; ++i) {
            long long ih = h0 + i * dil_h;
            for (long long j = j_lo; j < j_hi; ++j) {
                long long iw = w0 + j * dil_w;
                T value = plane[ih * width + iw];
                if (value > best || value != value) {   /* NaN wins, as torch */
                    best = value;
                    best_index = ih * width + iw;
                }
            }
        }
        out[idx] = best;
        indices[idx] = best_index;
    }
}

extern "C" __global__ void scatter_to_indices(
        const T* grad_out, const long long* indices, T* grad_in, long long planes,
        long long count, long long size) {
    long long total = planes * count;
    for (long long idx = blockIdx.x * (long long)blockDim.x + threadIdx.x; idx < total;
         idx += (long long)blockDim.x * gridDim.x) {
        long long index = indices[idx];
        if (index >= 0) atomicAdd(grad_in + (idx / count) * size + index, grad_out[idx]);
    }
}

__device__ inline long long avg_window(
        long long oh, long long ow, long long kernel_h, long long kernel_w,
        long long stride_h, long long stride_w, long long pad_h, long long pad_w,
        long long height, long long width, long long count_include_pad,
        long long divisor_override, long long* h0, long long* h1, long long* w0,
        long long* w1) {
    long long a = oh * stride_h - pad_h, c = ow * stride_w - pad_w;
    long long b = lmin(a + kernel_h, height + pad_h), d = lmin(c + kernel_w, width + pad_w);
    long long pool_size = (b - a) * (d - c);
    a = lmax(a, 0); c = lmax(c, 0); b = lmin(b, height); d = lmin(d, width);
    *h0 = a; *h1 = b; *w0 = c; *w1 = d;
    if (divisor_override != 0) return divisor_override;
    if (count_include_pad) return pool_size;
    return (b - a) * (d - c);
}

extern "C" __global__ void avg_pool2d_forward(
        const T* x, T* out, long long planes, long long height, long long width,
        long long out_h, long long out_w, long long kernel_h, long long kernel_w,
        long long stride_h, long long stride_w, long long pad_h, long long pad_w,
        long long count_include_pad, long long divisor_override) {
    long long total = planes * out_h * out_w;
    for (long long idx = blockIdx.x * (long long)blockDim.x + threadIdx.x; idx < total;
         idx += (long long)blockDim.x * gridDim.x) {
        long long ow = idx % out_w;
        long long oh = (idx / out_w) % out_h;
        long long p = idx / (out_w * out_h);
        long long h0, h1, w0, w1;
        long long divisor = avg_window(oh, ow, kernel_h, kernel_w, stride_h, stride_w,
                                       pad_h, pad_w, height, width, count_include_pad,
                                       divisor_override, &h0, &h1, &w0, &w1);
        if (h0 >= h1 || w0 >= w1) { out[idx] = 0; continue; }
        const T* plane = x + p * height * width;
        T total_value = 0;
        for (long long ih = h0; ih < h1; ++ih)
            for (long long iw = w0; iw < w1; ++iw)
                total_value += plane[ih * width + iw];
        out[idx] = total_value / (T)divisor;
    }
}

extern "C" __global__ void avg_pool2d_backward(
        const T* grad_out, T* grad_in, long long planes, long long height, long long width,
        long long out_h, long long out_w, long long kernel_h, long long kernel_w,
        long long stride_h, long long stride_w, long long pad_h, long long pad_w,
        long long count_include_pad, long long divisor_override) {
    long long total = planes * out_h * out_w;
    for (long long idx = blockIdx.x * (long long)blockDim.x + threadIdx.x; idx < total;
         idx += (long long)blockDim.x * gridDim.x) {
        long long ow = idx % out_w;
        long long oh = (idx / out_w) % out_h;
        long long p = idx / (out_w * out_h);
        long long h0, h1, w0, w1;
        long long divisor = avg_window(oh, ow, kernel_h, kernel_w, stride_h, stride_w,
                                       pad_h, pad_w, height, width, count_include_pad,
                                       divisor_override, &h0, &h1, &w0, &w1);
        if (h0 >= h1 || w0 >= w1) continue;
        T share = grad_out[idx] / (T)divisor;
        T* plane = grad_in + p * height * width;
        for (long long ih = h0; ih < h1; ++ih)
            for (long long iw = w0; iw < w1; ++iw)
                atomicAdd(plane + ih * width + iw, share);
    }
}

__device__ inline void adaptive_bounds(long long index, long long in_size,
                                       long long out_size, long long* start,
                                       long long* end) {
    *start = (index * in_size) / out_size;
    *end = ((index + 1) * in_size + out_size - 1) / out_size;
}

extern "C" __global__ void adaptive_avg_pool2d_forward(
        const T* x, T* out, long long planes, long long height, long long width,
        long long out_h, long long out_w) {
    long long total = planes * out_h * out_w;
    for (long long idx = blockIdx.x * (long long)blockDim.x + threadIdx.x; idx < total;
         idx += (long long)blockDim.x * gridDim.x) {
        long long ow = idx % out_w;
        long long oh = (idx / out_w) % out_h;
        long long p = idx / (out_w * out_h);
        long long h0, h1, w0, w1;
        adaptive_bounds(oh, height, out_h, &h0, &h1);
        adaptive_bounds(ow, width, out_w, &w0, &w1);
        const T* plane = x + p * height * width;
        T total_value = 0;
        for (long long ih = h0; ih < h1; ++ih)
            for (long long iw = w0; iw < w1; ++iw)
                total_value += plane[ih * width + iw];
        out[idx] = total_value / (T)((h1 - h0) * (w1 - w0));
    }
}

extern "C" __global__ void adaptive_avg_pool2d_backward(
        const T* grad_out, T* grad_in, long long planes, long long height, long long width,
        long long out_h, long long out_w) {
    long long total = planes * out_h * out_w;
    for (long long idx = blockIdx.x * (long long)blockDim.x + threadIdx.x; idx < total;
         idx += (long long)blockDim.x * gridDim.x) {
        long long ow = idx % out_w;
        long long oh = (idx / out_w) % out_h;
        long long p = idx / (out_w * out_h);
        long long h0, h1, w0, w1;
        adaptive_bounds(oh, height, out_h, &h0, &h1);
        adaptive_bounds(ow, width, out_w, &w0, &w1);
        T share = grad_out[idx] / (T)((h1 - h0) * (w1 - w0));
        T* plane = grad_in + p * height * width;
        for (long long ih = h0; ih < h1; ++ih)
            for (long long iw = w0; iw < w1; ++iw)
                atomicAdd(plane + ih * width + iw, share);
    }
}

extern "C" __global__ void adaptive_max_pool2d_forward(
        const T* x, T* out, long long* indices, long long planes, long long height,
        long long width, long long out_h, long long out_w) {
    long long total = planes * out_h * out_w;
    for (long long idx = blockIdx.x * (long long)blockDim.x + threadIdx.x; idx < total;
         idx += (long long)blockDim.x * gridDim.x) {
        long long ow = idx % out_w;
        long long oh = (idx / out_w) % out_h;
        long long p = idx / (out_w * out_h);
        long long h0, h1, w0, w1;
        adaptive_bounds(oh, height, out_h, &h0, &h1);
        adaptive_bounds(ow, width, out_w, &w0, &w1);
        const T* plane = x + p * height * width;
        T best = negative_infinity();
        long long best_index = h0 * width + w0;
        for (long long ih = h0; ih < h1; ++ih)
            for (long long iw = w0; iw < w1; ++iw) {
                T value = plane[ih * width + iw];
                if (value > best || value != value) {   /* NaN wins, as torch */
                    best = value;
                    best_index = ih * width + iw;
                }
            }
        out[idx] = best;
        indices[idx] = best_index;
    }
}
"""

_KERNEL_NAMES = ("im2col", "col2im", "max_pool2d_forward", "scatter_to_indices",
                 "avg_pool2d_forward", "avg_pool2d_backward", "adaptive_avg_pool2d_forward",
                 "adaptive_avg_pool2d_backward", "adaptive_max_pool2d_forward")


def _kernel(name, dtype):
    """The compiled kernel `name` for `dtype` (float32 -> float, float64 -> double)."""
    dtype = np.dtype(dtype)
    if dtype not in (np.float32, np.float64):
        raise TypeError(f"CUDA kernel {name}: expected float32 or float64, got {dtype}")
    module = _modules.get(dtype.name)
    if module is None:
        import cupy

        c_type = "float" if dtype == np.float32 else "double"
        # NVRTC's default language standard (C++17) is used: the source needs nothing
        # newer than C++11, and older -std values are being dropped by newer toolkits.
        module = cupy.RawModule(code=_SOURCE.replace("TYPE", c_type, 1))
        _modules[dtype.name] = module
    return module.get_function(name)


def _launch(name, dtype, total, *args):
    """Run kernel `name` with one thread per element of a `total`-sized index space."""
    if total <= 0:
        return
    blocks = min((total + _THREADS - 1) // _THREADS, 2**31 - 1)
    converted = tuple(np.int64(a) if isinstance(a, (int, bool, np.integer)) else a
                      for a in args)
    _kernel(name, dtype)((blocks,), (_THREADS,), converted)


def _check_contiguous(*arrays):
    for a in arrays:
        if not a.flags.c_contiguous:
            raise ValueError("CUDA kernels need C-contiguous arrays")


# ----------------------------------------------------------------------------- conv

def im2col(x, cols, out_h, out_w, kernel_h, kernel_w, stride_h, stride_w,
           pad_h, pad_w, dil_h, dil_w):
    """Fill `cols` (planes, kh*kw, out_h*out_w) from `x` (planes, H, W); see cpu.im2col."""
    _check_contiguous(x, cols)
    planes, height, width = x.shape
    _launch("im2col", x.dtype, cols.size, x, cols, planes, height, width, out_h, out_w,
            kernel_h, kernel_w, stride_h, stride_w, pad_h, pad_w, dil_h, dil_w)


def col2im(cols, dx, out_h, out_w, kernel_h, kernel_w, stride_h, stride_w,
           pad_h, pad_w, dil_h, dil_w):
    """Overwrite `dx` (planes, H, W) with the scatter-add of `cols`; see cpu.col2im."""
    _check_contiguous(cols, dx)
    planes, height, width = dx.shape
    _launch("col2im", dx.dtype, dx.size, cols, dx, planes, height, width, out_h, out_w,
            kernel_h, kernel_w, stride_h, stride_w, pad_h, pad_w, dil_h, dil_w)


# ----------------------------------------------------------------------------- pooling

def max_pool2d_forward(x, out, indices, kernel_h, kernel_w, stride_h, stride_w,
                       pad_h, pad_w, dil_h, dil_w):
    """Window max and flat argmax; see cpu.max_pool2d_forward."""
    _check_contiguous(x, out, indices)
    planes, height, width = x.shape
    _launch("max_pool2d_forward", x.dtype, out.size, x, out, indices, planes, height, width,
            out.shape[1], out.shape[2], kernel_h, kernel_w, stride_h, stride_w, pad_h,
            pad_w, dil_h, dil_w)


def scatter_to_indices(grad_out, indices, grad_in):
    """Overwrite `grad_in` (planes, H*W) with gradients sent to their argmax."""
    _check_contiguous(grad_out, indices, grad_in)
    grad_in.fill(0)
    planes, size = grad_in.shape
    _launch("scatter_to_indices", grad_in.dtype, grad_out.size, grad_out, indices, grad_in,
            planes, grad_out.shape[1], size)


def avg_pool2d_forward(x, out, kernel_h, kernel_w, stride_h, stride_w, pad_h, pad_w,
                       count_include_pad, divisor_override):
    """Window means; see cpu.avg_pool2d_forward."""
    _check_contiguous(x, out)
    planes, height, width = x.shape
    _launch("avg_pool2d_forward", x.dtype, out.size, x, out, planes, height, width,
            out.shape[1], out.shape[2], kernel_h, kernel_w, stride_h, stride_w, pad_h,
            pad_w, int(count_include_pad), divisor_override)


def avg_pool2d_backward(grad_out, grad_in, kernel_h, kernel_w, stride_h, stride_w,
                        pad_h, pad_w, count_include_pad, divisor_override):
    """Overwrite `grad_in` with each output gradient spread over its window."""
    _check_contiguous(grad_out, grad_in)
    grad_in.fill(0)
    planes, height, width = grad_in.shape
    _launch("avg_pool2d_backward", grad_in.dtype, grad_out.size, grad_out, grad_in, planes,
            height, width, grad_out.shape[1], grad_out.shape[2], kernel_h, kernel_w,
            stride_h, stride_w, pad_h, pad_w, int(count_include_pad), divisor_override)


def adaptive_avg_pool2d_forward(x, out):
    """Adaptive average pooling; see cpu.adaptive_avg_pool2d_forward."""
    _check_contiguous(x, out)
    planes, height, width = x.shape
    _launch("adaptive_avg_pool2d_forward", x.dtype, out.size, x, out, planes, height, width,
            out.shape[1], out.shape[2])


def adaptive_avg_pool2d_backward(grad_out, grad_in):
    """Overwrite `grad_in` with each output gradient spread over its adaptive window."""
    _check_contiguous(grad_out, grad_in)
    grad_in.fill(0)
    planes, height, width = grad_in.shape
    _launch("adaptive_avg_pool2d_backward", grad_in.dtype, grad_out.size, grad_out, grad_in,
            planes, height, width, grad_out.shape[1], grad_out.shape[2])


def adaptive_max_pool2d_forward(x, out, indices):
    """Adaptive max pooling with flat argmax; see cpu.adaptive_max_pool2d_forward."""
    _check_contiguous(x, out, indices)
    planes, height, width = x.shape
    _launch("adaptive_max_pool2d_forward", x.dtype, out.size, x, out, indices, planes,
            height, width, out.shape[1], out.shape[2])


# ----------------------------------------------------------------------------- perf twins
# CuPy twins of kernels added to cpu.py for the CPU's speed; same names and arguments.


def max_pool2d_forward_inside(x, out, indices, kernel_h, kernel_w, stride_h, stride_w):
    """cpu.max_pool2d_forward_inside: the general kernel with no padding or dilation."""
    max_pool2d_forward(x, out, indices, kernel_h, kernel_w, stride_h, stride_w, 0, 0, 1, 1)


def relu_forward(x, out):
    """cpu.relu_forward on flat arrays: max(x, 0) with NaN passing (plain CuPy ops)."""
    import cupy

    cupy.copyto(out, cupy.where(x <= 0, x.dtype.type(0), x))


def relu_backward(out, grad, grad_in):
    """cpu.relu_backward on flat arrays: grad where out > 0, else 0 (a select)."""
    import cupy

    cupy.copyto(grad_in, cupy.where(out <= 0, grad.dtype.type(0), grad))
