"""Conv2d: torch's parameter names, shapes, defaults, init and repr around `F.conv2d`."""
from __future__ import annotations

import math

from ..tensor import empty
from . import functional as F
from . import init
from .lazy import LazyModuleMixin, UninitializedParameter
from .module import Module
from .parameter import Parameter

_PADDING_MODES = ("zeros", "reflect", "replicate", "circular")


def _pair(value, name):
    if isinstance(value, int):
        return (value, value)
    value = tuple(value)
    if len(value) != 2 or not all(isinstance(v, int) for v in value):
        raise ValueError(f"Conv2d: {name} must be an int or a pair of ints, got {value!r}")
    return value


class Conv2d(Module):
    """2-D convolution over (N, C_in, H, W) (or unbatched (C_in, H, W)) inputs.

    weight: (out_channels, in_channels // groups, kh, kw), init kaiming_uniform(a=sqrt(5));
    bias: (out_channels,), init U(-1/sqrt(fan_in), 1/sqrt(fan_in)).
    `padding` may be an int, a pair, "valid" or "same" (stride 1 only, as torch).
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size, stride=1, padding=0,
                 dilation=1, groups: int = 1, bias: bool = True, padding_mode: str = "zeros",
                 device=None, dtype=None):
        super().__init__()
        if groups <= 0:
            raise ValueError("groups must be a positive integer")
        if in_channels % groups != 0:
            raise ValueError("in_channels must be divisible by groups")
        if out_channels % groups != 0:
            raise ValueError("out_channels must be divisible by groups")
        if padding_mode not in _PADDING_MODES:
            raise ValueError(f"padding_mode must be one of {list(_PADDING_MODES)}, but got "
                             f"padding_mode='{padding_mode}'")
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.kernel_size = _pair(kernel_size, "kernel_size")
        self.stride = _pair(stride, "stride")
        self.dilation = _pair(dilation, "dilation")
        if isinstance(padding, str):
            if padding not in ("valid", "same"):
                raise ValueError(f"Invalid padding string {padding!r}, should be one of "
                                 f"['valid', 'same']")
            if padding == "same" and any(s != 1 for s in self.stride):
                raise ValueError("padding='same' is not supported for strided convolutions")
            self.padding = padding
        else:
            self.padding = _pair(padding, "padding")
        self.output_padding = (0, 0)
        self.transposed = False
        self.groups = groups
        self.padding_mode = padding_mode
        self.weight = Parameter(empty(out_channels, in_channels // groups,
                                              *self.kernel_size, device=device, dtype=dtype))
        if bias:
            self.bias = Parameter(empty(out_channels, device=device, dtype=dtype))
        else:
            self.register_parameter("bias", None)
        self.reset_parameters()

    def reset_parameters(self):
        init.kaiming_uniform_(self.weight, a=math.sqrt(5))
        if self.bias is not None:
            fan_in, _ = init._calculate_fan_in_and_fan_out(self.weight)
            if fan_in != 0:
                bound = 1 / math.sqrt(fan_in)
                init.uniform_(self.bias, -bound, bound)

    def _explicit_padding(self):
        """(top, bottom, left, right) after resolving "valid"/"same"."""
        if self.padding == "valid":
            return (0, 0, 0, 0)
        if self.padding == "same":
            sides = []
            for k, d in zip(self.kernel_size, self.dilation):
                total = d * (k - 1)
                sides += [total // 2, total - total // 2]
            return tuple(sides)
        ph, pw = self.padding
        return (ph, ph, pw, pw)

    def forward(self, input):
        top, bottom, left, right = self._explicit_padding()
        if self.padding_mode != "zeros" or top != bottom or left != right:
            mode = "constant" if self.padding_mode == "zeros" else self.padding_mode
            input = F.pad(input, (left, right, top, bottom), mode=mode)
            padding = 0
        else:
            padding = (top, left)
        return F.conv2d(input, self.weight, self.bias, self.stride, padding, self.dilation,
                        self.groups)

    def extra_repr(self):
        text = (f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, "
                f"stride={self.stride}")
        if self.padding != (0, 0):
            text += f", padding={self.padding}"
        if self.dilation != (1, 1):
            text += f", dilation={self.dilation}"
        if self.output_padding != (0, 0):
            text += f", output_padding={self.output_padding}"
        if self.groups != 1:
            text += f", groups={self.groups}"
        if self.bias is None:
            text += ", bias=False"
        if self.padding_mode != "zeros":
            text += f", padding_mode={self.padding_mode}"
        return text


class ConvTranspose2d(Module):
    """2-D transposed convolution (the adjoint of Conv2d), as `torch.nn.ConvTranspose2d`.

    weight: (in_channels, out_channels // groups, kh, kw), init kaiming_uniform(a=sqrt(5));
    bias: (out_channels,), init U(-1/sqrt(fan_in), 1/sqrt(fan_in)) with torch's fan_in
    (weight.shape[1] * kh * kw). `forward(input, output_size=None)`: an `output_size`
    chooses the output_padding, as torch.
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size, stride=1, padding=0,
                 output_padding=0, groups: int = 1, bias: bool = True, dilation=1,
                 padding_mode: str = "zeros", device=None, dtype=None):
        super().__init__()
        if groups <= 0:
            raise ValueError("groups must be a positive integer")
        if in_channels % groups != 0:
            raise ValueError("in_channels must be divisible by groups")
        if out_channels % groups != 0:
            raise ValueError("out_channels must be divisible by groups")
        if padding_mode != "zeros":
            raise ValueError('Only "zeros" padding mode is supported for ConvTranspose2d')
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.kernel_size = _pair(kernel_size, "kernel_size")
        self.stride = _pair(stride, "stride")
        self.padding = _pair(padding, "padding")
        self.output_padding = _pair(output_padding, "output_padding")
        self.dilation = _pair(dilation, "dilation")
        self.transposed = True
        self.groups = groups
        self.padding_mode = padding_mode
        self.weight = Parameter(empty(in_channels, out_channels // groups, *self.kernel_size,
                                      device=device, dtype=dtype))
        if bias:
            self.bias = Parameter(empty(out_channels, device=device, dtype=dtype))
        else:
            self.register_parameter("bias", None)
        self.reset_parameters()

    reset_parameters = Conv2d.reset_parameters

    def _output_padding(self, input, output_size):
        """torch's rule: the output_padding that makes the output `output_size` (H, W)."""
        if output_size is None:
            return self.output_padding
        output_size = tuple(output_size)[-2:]
        padding = []
        for d in range(2):
            size = input.shape[-2 + d]
            smallest = ((size - 1) * self.stride[d] - 2 * self.padding[d]
                        + self.dilation[d] * (self.kernel_size[d] - 1) + 1)
            largest = smallest + self.stride[d] - 1
            if not smallest <= output_size[d] <= largest:
                raise ValueError(f"{self!r}: requested an output_size of {output_size}, but "
                                 f"valid sizes for input shape {input.shape} range from "
                                 f"{smallest} to {largest} in dim {d}")
            padding.append(output_size[d] - smallest)
        return tuple(padding)

    def forward(self, input, output_size=None):
        return F.conv_transpose2d(input, self.weight, self.bias, self.stride, self.padding,
                                  self._output_padding(input, output_size), self.groups,
                                  self.dilation)

    extra_repr = Conv2d.extra_repr


class LazyConv2d(LazyModuleMixin, Conv2d):
    """Conv2d whose `in_channels` is read from the first input (dim 1, or dim 0 of an
    unbatched input); then it becomes a `Conv2d` (see nn/lazy.py)."""

    cls_to_become = Conv2d

    def __init__(self, out_channels: int, kernel_size, stride=1, padding=0, dilation=1,
                 groups: int = 1, bias: bool = True, padding_mode: str = "zeros", device=None,
                 dtype=None):
        super().__init__(0, 0, kernel_size, stride, padding, dilation, groups, False,
                         padding_mode, device=device, dtype=dtype)
        self.out_channels = out_channels
        self.weight = UninitializedParameter(device=device, dtype=dtype)
        if bias:
            self.bias = UninitializedParameter(device=device, dtype=dtype)

    def reset_parameters(self):
        if not self.has_uninitialized_params() and self.in_channels != 0:
            super().reset_parameters()

    def initialize_parameters(self, input, *args, **kwargs):
        if input.ndim not in (3, 4):
            raise ValueError(f"LazyConv2d: expected a 3-D (C, H, W) or 4-D (N, C, H, W) "
                             f"input, got shape {input.shape}")
        self.in_channels = input.shape[-3]
        if self.in_channels % self.groups:
            raise ValueError(f"LazyConv2d: in_channels {self.in_channels} (input shape "
                             f"{input.shape}) must be divisible by groups={self.groups}")
        self.weight.materialize((self.out_channels, self.in_channels // self.groups,
                                 *self.kernel_size))
        if self.bias is not None:
            self.bias.materialize((self.out_channels,))
        self.reset_parameters()

    def _sizes_from_parameters(self):
        self.in_channels = self.weight.shape[1] * self.groups
