"""A faster training path for ConvBlock on CPU: the same math in fewer passes over memory.

ConvBlock is conv -> BatchNorm -> ReLU -> Dropout -> 2x2 max-pool. On a CPU that chain is memory-bound,
not compute-bound: at batch 256 the eager ops around the convolutions (BatchNorm forward and backward,
ReLU, Dropout's Bernoulli draws, max-pool) took about 60 % of a training step. Here BatchNorm ->
ReLU -> Dropout -> max-pool is one autograd Function on the channels-last conv output, seen as a
(pixels, channels) matrix:

- batch statistics: column sums of a wide (B*H, W*C) view (torch.var_mean over channels is ~10x slower);
- max-pool first, ReLU after (they commute: ReLU is monotonic and the dropout scale is positive).
  Without dropout the pool runs on the conv output itself (the max of scale * y + shift is at the max
  of sign(scale) * y), so normalising, ReLU and scaling touch only the pooled, 4x smaller tensor;
- with dropout: normalise in one multiply-add, then a dropped element becomes 0, which the ReLU after
  the pool cannot tell from a negative value;
- backward: BatchNorm's gradient is an affine function of the input plus the pooled gradient put
  back at the arg-max positions: one multiply-add and one scatter, every per-channel sum taken at
  pooled resolution.

Where a C compiler is found, the same math runs in handsign/models/kernels/fused_block.c (handsign.models.kernels.native builds it on
first use): _NativeBNReLUDropPool below, three passes over y, y kept in bfloat16 under autocast, dropout
drawn from one seed per call. `ConvBlock.kernels` (the run config's `kernels`) chooses the path.

Both paths draw the same dropout masks: one 64-bit seed per call from torch's generator, then 16-bit uniform
integers hashed from it (SplitMix64; splitmix_keep is the torch-op twin of the C code), so the drop probability
is rounded to a multiple of 1/65536 (0.2 -> 0.199997) and the same --seed drops the same activations with and
without a C compiler (the sums still round differently: fp64 in C, fp32 in torch ops). Eval mode, ONNX export, float64 and non-CPU devices use the plain nn.Sequential;
tests/test_fused.py checks that the two agree in outputs, gradients and running statistics.
"""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from handsign.models.kernels import native

def splitmix_keep(shape, p: float, seed: int) -> torch.Tensor:
    """The dropout mask fused_block.c draws from `seed`, computed here without it: element i is kept unless lane
    i % 4 (16 bits, little-endian) of SplitMix64(seed, word i // 4) is below round(p * 65536). So a run draws the
    same masks with and without a C compiler. In NumPy: torch has no unsigned 64-bit arithmetic, and NumPy's
    uint64 ops were measured ~5x faster than the same hash emulated in signed torch ops."""
    n = math.prod(shape)
    with np.errstate(over="ignore"):  # the products wrap modulo 2^64, as in C
        z = np.arange(1, (n + 3) // 4 + 1, dtype=np.uint64)
        z *= np.uint64(0x9E3779B97F4A7C15)
        z += np.uint64(seed)
        z ^= z >> np.uint64(30)
        z *= np.uint64(0xBF58476D1CE4E5B9)
        z ^= z >> np.uint64(27)
        z *= np.uint64(0x94D049BB133111EB)
        z ^= z >> np.uint64(31)
    lanes = z.view("<u2")[:n]  # the 16-bit draws, lane i % 4 of word i // 4
    return torch.from_numpy(lanes >= round(p * 65536)).view(shape)


def draw_seed(generator: torch.Generator | None = None) -> int:
    """The one 64-bit draw from torch's generator that seeds a block's dropout (C and torch-op paths alike)."""
    return int(torch.empty((), dtype=torch.int64).random_(generator=generator)) & (2 ** 64 - 1)


def keep_mask(shape, p: float, generator: torch.Generator | None = None) -> torch.Tensor:
    """Bool tensor of `shape`, True with probability 1 - p (p rounded to a multiple of 1/65536)."""
    if p >= 1:
        return torch.zeros(shape, dtype=torch.bool)
    n = math.prod(shape)
    words = torch.empty((n + 3) // 4, dtype=torch.int64).random_(-2 ** 63, None, generator=generator)
    threshold = round(p * 65536) - 32768  # int16 draws are uniform on [-32768, 32767]
    return (words.view(torch.int16)[:n] >= threshold).view(shape)


class _BNReLUDropPool(torch.autograd.Function):
    """y (B, C, H, W) channels-last -> maxpool2x2(dropout(relu(batchnorm(y)))) with batch statistics."""

    @staticmethod
    def forward(ctx, y, weight, bias, keep, keep_scale: float, eps: float):
        b, c, h, w = y.shape
        rows = y.permute(0, 2, 3, 1).reshape(-1, c)  # (B*H*W, C): a view, since y is channels-last
        m = rows.shape[0]
        wide = rows.view(b * h, w * c)  # per-channel work on a wide matrix vectorises; on (M, C) it does not
        mean = _channel_sum(wide, b * h, w, c) / m
        var = (_channel_sum(wide * wide, b * h, w, c) / m - mean * mean).clamp_(min=0)
        invstd = (var + eps).rsqrt()
        scale = weight * invstd
        shift = bias - mean * scale
        if keep is not None:  # normalise; a dropped element becomes 0, which ReLU-after-pool treats as any <= 0
            a = torch.addcmul(shift.repeat(w), wide, scale.repeat(w)).mul_(keep.view(b * h, w * c))
            pooled, idx = F.max_pool2d(_nchw_view(a, b, h, w, c), 2, 2, return_indices=True)
        else:  # no dropout: pool y itself (max of scale * y + shift is at max of sign(scale) * y), then normalise
            negative = scale < 0
            signed = wide * torch.where(negative, -1.0, 1.0).repeat(w) if negative.any() else wide
            pooled, idx = F.max_pool2d(_nchw_view(signed, b, h, w, c), 2, 2, return_indices=True)
            pooled = torch.addcmul(shift.view(1, c, 1, 1), pooled, scale.abs().view(1, c, 1, 1))
        out = pooled.relu()  # idx: flat h * W + w in each (image, channel) plane
        if keep_scale != 1.0:
            out = out * keep_scale
        ctx.save_for_backward(rows, pooled, idx, mean, invstd, weight)
        ctx.dims, ctx.keep_scale = (b, c, h, w), keep_scale
        ctx.mark_non_differentiable(mean, var)
        return out, mean, var

    @staticmethod
    def backward(ctx, grad_out, _grad_mean, _grad_var):
        rows, pooled, idx, mean, invstd, weight = ctx.saved_tensors
        b, c, h, w = ctx.dims
        m = rows.shape[0]
        # gradient w.r.t. the normalised value at each window's arg-max, (B, Hp*Wp, C)
        if ctx.keep_scale != 1.0:
            grad_out = grad_out * ctx.keep_scale
        g = torch.where(pooled > 0, grad_out, 0.0).permute(0, 2, 3, 1).reshape(b, -1, c)
        idx = idx.permute(0, 2, 3, 1).reshape(b, -1, c)
        xhat = (torch.gather(rows.view(b, h * w, c), 1, idx) - mean) * invstd
        hp, wp = pooled.shape[2:]
        sum_g = _channel_sum(g, b * hp, wp, c)
        sum_g_xhat = _channel_sum(g * xhat, b * hp, wp, c)
        scale = weight * invstd
        # d rows = scale * (g_full - mean(g_full) - xhat * mean(g_full * xhat)), xhat = (rows - mean) * invstd
        k1 = -scale * invstd * sum_g_xhat / m
        k0 = -scale * sum_g / m - k1 * mean
        grad_rows = torch.addcmul(k0.repeat(w), rows.view(b * h, w * c), k1.repeat(w))
        grad_rows.view(b, h * w, c).scatter_add_(1, idx, g * scale)
        return _nchw_view(grad_rows, b, h, w, c), sum_g_xhat, sum_g, None, None, None


class _NativeBNReLUDropPool(torch.autograd.Function):
    """_BNReLUDropPool's math in handsign/models/kernels/fused_block.c: three passes over y instead of about a dozen
    torch ops, and y stays in bfloat16 under autocast (the gradient for y is returned in y's dtype)."""

    @staticmethod
    def forward(ctx, y, weight, bias, keep, keep_scale: float, eps: float, seed: int, threshold: int):
        b, c, h, w = y.shape
        # what the C code reads through raw pointers, checked first: a wrong layout would be read out of bounds
        native.check(y, (b, c, h, w), (torch.float32, torch.bfloat16), channels_last=True)
        if keep is not None:
            native.check(keep, (b, h, w, c), (torch.uint8,))
        sums = torch.empty(2, c, dtype=torch.float64)  # fp64 sums: E[y^2] - mean^2 keeps its digits
        native.kernel("channel_stats", y.dtype)(y.data_ptr(), b * h, w, c, sums[0].data_ptr(), sums[1].data_ptr())
        m = b * h * w
        mean64 = sums[0] / m
        var = (sums[1] / m - mean64 * mean64).clamp_(min=0).float()
        mean = mean64.float()
        invstd = (var + eps).rsqrt()
        scale = (weight * invstd).contiguous()
        shift = (bias - mean * scale).contiguous()
        out = torch.empty(b, h // 2, w // 2, c)  # (B, Ho, Wo, C): returned as a channels-last (B, C, Ho, Wo)
        arg = torch.empty(b, h // 2, w // 2, c, dtype=torch.uint8)
        native.kernel("pool_forward", y.dtype)(y.data_ptr(), b, h, w, c, scale.data_ptr(), shift.data_ptr(),
                                               native.ptr(keep), seed, threshold, keep_scale,
                                               out.data_ptr(), arg.data_ptr())
        ctx.save_for_backward(y, out, arg, mean, invstd, scale)
        ctx.keep_scale = keep_scale
        ctx.mark_non_differentiable(mean, var)
        return out.permute(0, 3, 1, 2), mean, var

    @staticmethod
    def backward(ctx, grad_out, _grad_mean, _grad_var):
        y, out, arg, mean, invstd, scale = ctx.saved_tensors
        b, c, h, w = y.shape
        g = grad_out.float().permute(0, 2, 3, 1).contiguous()  # (B, Ho, Wo, C)
        native.check(g, (b, h // 2, w // 2, c), (torch.float32,))
        sums = torch.empty(2, c, dtype=torch.float64)
        native.kernel("backward_sums", y.dtype)(y.data_ptr(), b, h, w, c, g.data_ptr(), out.data_ptr(),
                                                arg.data_ptr(), ctx.keep_scale, sums[0].data_ptr(),
                                                sums[1].data_ptr())
        sum_g64, sum_gy = sums  # sums of g and g * y at the windows' maxima (fp64)
        sum_g_xhat = ((sum_gy - mean.double() * sum_g64) * invstd.double()).float()
        sum_g = sum_g64.float()
        m = b * h * w
        # d y = scale * (g_full - mean(g_full) - xhat * mean(g_full * xhat)) = k0 + k1 * y (+ scale * g at the max)
        k1 = (-scale * invstd * sum_g_xhat / m).contiguous()
        k0 = (-scale * sum_g / m - k1 * mean).contiguous()
        grad = torch.empty_like(y, memory_format=torch.channels_last)
        native.kernel("backward_grad", y.dtype)(y.data_ptr(), b, h, w, c, g.data_ptr(), out.data_ptr(),
                                                arg.data_ptr(), ctx.keep_scale, scale.data_ptr(), k0.data_ptr(),
                                                k1.data_ptr(), grad.data_ptr())
        return grad, sum_g_xhat, sum_g, None, None, None, None, None


def _channel_sum(t: torch.Tensor, rows: int, w: int, c: int) -> torch.Tensor:
    """Per-channel sum of a contiguous (..., C) tensor, summed as a (rows, W*C) matrix, then over W."""
    return t.reshape(rows, w * c).sum(0).view(w, c).sum(0)


def _nchw_view(t: torch.Tensor, b: int, h: int, w: int, c: int) -> torch.Tensor:
    """A contiguous (B, H, W, C) buffer seen as a channels-last (B, C, H, W) tensor (no copy)."""
    return t.view(b, h, w, c).permute(0, 3, 1, 2)


class Dropout(nn.Dropout):
    """nn.Dropout whose CPU training-mode mask comes from keep_mask (cheaper draws, same state dict)."""

    def forward(self, x):
        if not (self.training and 0 < self.p < 1 and x.device.type == "cpu"):
            return super().forward(x)
        return x * keep_mask(x.shape, self.p) * (1.0 / (1.0 - self.p))


def conv_block_train(x: torch.Tensor, conv, bn, p: float, generator: torch.Generator | None = None,
                     keep: torch.Tensor | None = None, native_kernels: bool = True) -> torch.Tensor:
    """ConvBlock's training-mode forward (batch statistics, running stats updated like nn.BatchNorm2d).

    x: (B, C_in, H, W) float32 on CPU -> (B, C_out, H // 2, W // 2), channels-last. `keep` (bool,
    (B, H, W, C_out)) fixes the dropout mask; by default it is drawn from one seed taken from `generator` when
    p > 0, the same mask on both paths. native_kernels: the C kernels where they build, else the torch ops.
    """
    y = F.conv2d(x.contiguous(memory_format=torch.channels_last), conv.weight, conv.bias,
                 conv.stride, conv.padding, conv.dilation, conv.groups)
    keep_scale = 1.0 / (1.0 - p) if p > 0 else 1.0
    if native_kernels and native.library() is not None and y.dtype in (torch.float32, torch.bfloat16):
        y = y.contiguous(memory_format=torch.channels_last)
        b, c, h, w = y.shape
        if keep is not None:
            keep = keep.to(torch.uint8).contiguous()
        # dropout draws: one 64-bit seed from torch's generator, the rest hashed from it in C
        seed = draw_seed(generator) if p > 0 and keep is None else 0
        out, mean, var = _NativeBNReLUDropPool.apply(y, bn.weight, bn.bias, keep, keep_scale, bn.eps,
                                                     seed, round(p * 65536) if p > 0 else 0)
        _update_running_stats(bn, mean, var, b * h * w)
        return out
    # under bf16 autocast the convolution answers in bfloat16; batch statistics need fp32 sums
    y = y.float().contiguous(memory_format=torch.channels_last)
    b, c, h, w = y.shape
    if keep is None and p > 0:
        keep = splitmix_keep((b, h, w, c), p, draw_seed(generator))
    out, mean, var = _BNReLUDropPool.apply(y, bn.weight, bn.bias, keep, keep_scale, bn.eps)
    _update_running_stats(bn, mean, var, b * h * w)
    return out


def _update_running_stats(bn: nn.BatchNorm2d, mean: torch.Tensor, var: torch.Tensor, n: int) -> None:
    """What nn.BatchNorm2d does in training mode: running averages of the mean and the unbiased variance."""
    if bn.track_running_stats:
        with torch.no_grad():
            bn.num_batches_tracked += 1
            momentum = bn.momentum if bn.momentum is not None else 1.0 / float(bn.num_batches_tracked)
            bn.running_mean.mul_(1 - momentum).add_(mean, alpha=momentum)
            bn.running_var.mul_(1 - momentum).add_(var * (n / max(n - 1, 1)), alpha=momentum)
