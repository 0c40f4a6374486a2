"""The fused CPU training path of ConvBlock computes what the plain nn.Sequential computes."""

import copy
import os
import shutil
import subprocess
import sys

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from handsign.models.kernels import fused, native
from handsign.models.kernels.fused import Dropout, conv_block_train, keep_mask
from handsign.models import ConvBlock, create_model, set_kernels


@pytest.fixture(params=["torch-ops", "native"])
def path(request):
    """Each test that takes it runs twice: through fused.py's torch ops and through fused_block.c."""
    if request.param == "native" and native.library() is None:
        if os.environ.get("CI") or shutil.which("cc"):
            pytest.fail(f"the C kernels did not build here: {native.status()}")
        pytest.skip(native.status())
    return request.param


def _native(path) -> bool:
    return path == "native"


def _kernels(path) -> str:
    """ConvBlock.kernels for the `path` fixture's parameter."""
    return "native" if path == "native" else "torch"


def _close(a, b, rtol=1e-4, atol=1e-4):
    """Equal up to float32 rounding: |a - b| <= rtol * max|b| + atol. (The conv bias gradient is 0 in exact
    math, since BatchNorm subtracts the mean, so both paths give rounding noise there: hence an atol
    relative to the block's largest gradient.)"""
    diff, scale = (a - b).abs().max().item(), b.abs().max().item()
    assert diff <= rtol * scale + atol, f"max diff {diff} vs max {scale}"


def _random_block(cin, cout, p, seed):
    torch.manual_seed(seed)
    block = ConvBlock(cin, cout, p)
    with torch.no_grad():  # negative scales and offsets too: the pool must pick the max of the *normalised* value
        block.model[1].weight.uniform_(-1.5, 1.5)
        block.model[1].bias.normal_()
        block.model[1].running_var.uniform_(0.5, 2)
    return block.train()


@pytest.mark.parametrize("cin,cout,size,p,batch", [(1, 25, 28, 0.0, 8), (25, 50, 14, 0.2, 6), (50, 75, 7, 0.0, 5),
                                                   (3, 4, 9, 0.5, 3), (2, 3, 6, 0.0, 1)])
def test_block_matches_sequential_in_outputs_gradients_and_running_stats(cin, cout, size, p, batch, path):
    fused = _random_block(cin, cout, p, seed=size)
    plain = copy.deepcopy(fused)
    x = (torch.randn(batch, cin, size, size) * 2 + 0.5)
    x1, x2 = x.clone().requires_grad_(), x.clone().requires_grad_()
    keep = torch.rand(batch, size, size, cout) > p
    out = conv_block_train(x1, fused.model[0], fused.model[1], p, keep=keep if p else None,
                           native_kernels=_native(path))

    conv, bn, relu, _, pool = plain.model  # the same mask, applied the way nn.Dropout would
    ref = relu(bn(conv(x2)))
    if p:
        ref = ref * keep.permute(0, 3, 1, 2) / (1 - p)
    ref = pool(ref)
    assert out.shape == ref.shape == (batch, cout, size // 2, size // 2)
    _close(out, ref)

    grad = torch.randn_like(ref)
    (out * grad).sum().backward()
    (ref * grad).sum().backward()
    _close(x1.grad, x2.grad)
    largest = max(p.grad.abs().max().item() for p in plain.parameters())
    for a, b in zip(fused.parameters(), plain.parameters()):
        _close(a.grad, b.grad, atol=1e-5 * largest)  # conv bias: rounding noise around 0 on both sides
    for name in ("running_mean", "running_var", "num_batches_tracked"):
        _close(getattr(fused.model[1], name).float(), getattr(plain.model[1], name).float(), rtol=1e-5)


@pytest.mark.parametrize("convs", [(), (2, 2, 1)])
def test_whole_cnn_training_step_matches_the_plain_modules(path, convs):
    torch.manual_seed(0)
    fused = create_model("cnn", 24, dropouts=(0.0, 0.0, 0.0), head_dropout=0.0, convs=convs).train()
    plain = set_kernels(copy.deepcopy(fused), "unfused")
    set_kernels(fused, _kernels(path))
    x, y = torch.rand(16, 1, 28, 28), torch.randint(0, 24, (16,))
    losses = []
    for model in (fused, plain):
        loss = F.cross_entropy(model(x), y)
        loss.backward()
        losses.append(loss.item())
    assert losses[0] == pytest.approx(losses[1], rel=1e-5)
    for a, b in zip(fused.parameters(), plain.parameters()):
        _close(a.grad, b.grad, rtol=1e-3)
    plain.load_state_dict(fused.state_dict())  # same keys; eval mode never takes the fused path
    fused.eval(), plain.eval()
    with torch.no_grad():
        assert torch.equal(fused(x), plain(x))


def test_fused_path_is_used_only_for_float32_cpu_training():
    block = _random_block(3, 4, 0.0, seed=1)
    plain = set_kernels(copy.deepcopy(block), "unfused")
    x = torch.randn(2, 3, 8, 8, dtype=torch.float64)
    block.double(), plain.double()
    assert torch.equal(block(x), plain(x))  # float64: the plain Sequential, exactly


def test_keep_mask_rate_shape_and_seed():
    mask = keep_mask((1000, 1000), 0.2, torch.Generator().manual_seed(3))
    assert mask.shape == (1000, 1000) and mask.dtype == torch.bool
    assert mask.float().mean().item() == pytest.approx(0.8, abs=0.002)
    again = keep_mask((1000, 1000), 0.2, torch.Generator().manual_seed(3))
    other = keep_mask((1000, 1000), 0.2, torch.Generator().manual_seed(4))
    assert torch.equal(mask, again) and not torch.equal(mask, other)
    assert keep_mask((7,), 0.0).all() and not keep_mask((7,), 1.0).any()
    rows = keep_mask((4000, 25), 0.5).float().mean(0)  # no column (draw position in a word) is biased
    assert ((rows - 0.5).abs() < 0.04).all()


def test_dropout_scales_kept_values_and_is_identity_in_eval():
    d = Dropout(0.3)
    x = torch.ones(200, 512)
    y = d.train()(x)
    kept = y != 0
    assert torch.allclose(y[kept], torch.full_like(y[kept], 1 / 0.7))
    assert kept.float().mean().item() == pytest.approx(0.7, abs=0.01)
    assert torch.equal(d.eval()(x), x)


def _splitmix_keep(shape, p: float, seed: int) -> torch.Tensor:
    """fused_block.c's dropout draws, in numpy: element i is kept unless 16-bit lane i % 4 of
    SplitMix64(seed + golden * (i // 4 + 1)) is below round(p * 65536)."""
    n = int(np.prod(shape))
    with np.errstate(over="ignore"):
        z = np.uint64(seed) + np.uint64(0x9E3779B97F4A7C15) * (np.arange((n + 3) // 4, dtype=np.uint64) + np.uint64(1))
        z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        z ^= z >> np.uint64(31)
    lanes = z.astype("<u8").view("<u2")[:n]
    return torch.from_numpy(lanes >= round(p * 65536)).reshape(shape)


def test_dropout_draws_are_splitmix_lanes_seeded_from_torch_on_both_paths(path):
    """One 64-bit seed from torch's generator, then SplitMix64 lanes: the torch ops and the C code draw the same
    mask, so the same seed drops the same activations with and without a C compiler."""
    block, p = _random_block(5, 6, 0.3, seed=2), 0.3
    x = torch.randn(4, 5, 10, 10)
    torch.manual_seed(11)
    out = conv_block_train(x, block.model[0], block.model[1], p, native_kernels=_native(path))
    torch.manual_seed(11)
    seed = int(torch.empty((), dtype=torch.int64).random_()) & (2 ** 64 - 1)  # the one draw the block takes
    keep = _splitmix_keep((4, 10, 10, 6), p, seed)
    assert torch.equal(fused.splitmix_keep((4, 10, 10, 6), p, seed), keep)  # the torch-op twin, bit for bit
    assert keep.float().mean().item() == pytest.approx(0.7, abs=0.03)
    ref = conv_block_train(x, copy.deepcopy(block.model[0]), copy.deepcopy(block.model[1]), p, keep=keep,
                           native_kernels=False)
    _close(out, ref)
    torch.manual_seed(12)
    assert not torch.equal(conv_block_train(x, block.model[0], block.model[1], p, native_kernels=_native(path)),
                           out)  # another seed, other draws


def test_the_same_seed_trains_alike_with_and_without_the_c_kernels():
    """A CNN with dropout in its blocks, the same seed, three steps: the C kernels and the torch ops draw the
    same masks, so the weights agree up to the sums' rounding (fp64 in C, fp32 in torch)."""
    if native.library() is None:
        pytest.skip(native.status())
    weights = []
    for kernels in ("native", "torch"):
        torch.manual_seed(0)
        model = set_kernels(create_model("cnn", 24, dropouts=(0.3, 0.3, 0.3), head_dropout=0.0), kernels).train()
        opt = torch.optim.SGD(model.parameters(), lr=0.05)
        data = torch.Generator().manual_seed(1)
        for _ in range(3):
            x, y = torch.rand(16, 1, 28, 28, generator=data), torch.randint(0, 24, (16,), generator=data)
            opt.zero_grad()
            F.cross_entropy(model(x), y).backward()
            opt.step()
        weights.append(torch.cat([q.detach().flatten() for q in model.parameters()]))
    _close(weights[0], weights[1], rtol=1e-4, atol=1e-5)


def test_the_c_kernels_refuse_a_tensor_they_would_misread():
    """Before a raw pointer goes to C: a wrong layout, shape or dtype is an error, not an out-of-bounds read."""
    y = torch.randn(2, 3, 4, 4)  # NCHW-contiguous, not channels-last
    with pytest.raises(ValueError, match="channels-last"):
        native.check(y, (2, 3, 4, 4), (torch.float32,), channels_last=True)
    with pytest.raises(ValueError, match="uint8"):
        native.check(torch.zeros(2, 4, 4, 3), (2, 4, 4, 3), (torch.uint8,))
    with pytest.raises(ValueError):
        native.check(torch.zeros(2, 4, 4, 3, dtype=torch.uint8)[:, ::2], (2, 2, 4, 3), (torch.uint8,))
    ok = torch.zeros(2, 3, 4, 4).contiguous(memory_format=torch.channels_last)
    assert native.check(ok, (2, 3, 4, 4), (torch.float32,), channels_last=True) is ok


def test_native_block_under_bf16_autocast_keeps_bf16_and_matches_the_torch_ops():
    if native.library() is None:
        pytest.skip(native.status())
    outs, grads = [], []
    for use_native in (False, True):
        block = _random_block(25, 50, 0.0, seed=4)
        x = torch.randn(8, 25, 14, 14).requires_grad_()
        with torch.autocast("cpu", dtype=torch.bfloat16):
            out = conv_block_train(x, block.model[0], block.model[1], 0.0, native_kernels=use_native)
        (out.float() * torch.linspace(-1, 1, out.numel()).view(out.shape)).sum().backward()
        outs.append(out.float())
        grads.append([x.grad, *(q.grad for q in block.parameters())])
    # both read the same bf16 conv output; they differ only in fp32 vs fp64 sums and where rounding happens
    _close(outs[1], outs[0], rtol=2e-2, atol=2e-2)
    for a, b in zip(grads[1], grads[0]):
        _close(a, b, rtol=3e-2, atol=3e-2 * max(g.abs().max().item() for g in grads[0]))


def test_without_a_compiler_training_falls_back_to_torch_ops(tmp_path):
    """CC names a compiler that fails: no library, a one-line reason, and a training step still runs."""
    code = ("import torch, torch.nn.functional as F\n"
            "from handsign.models.kernels import native\nfrom handsign.models import create_model\n"
            "m = create_model('cnn', 24).train()\n"
            "F.cross_entropy(m(torch.rand(4, 1, 28, 28)), torch.tensor([0, 1, 2, 3])).backward()\n"
            "print(native.library() is None, native.status())")
    env = {**os.environ, "CC": "false", "HANDSIGN_CACHE": str(tmp_path)}
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("True build failed")
    assert not list(tmp_path.rglob("*.so")) and not list(tmp_path.rglob("*.tmp"))  # nothing half-written


def test_a_nan_in_the_block_input_reaches_the_output(path):
    """A diverged run must show: max-pool propagates NaN (as torch's does), nothing pools it away."""
    block = _random_block(2, 3, 0.0, seed=5)
    x = torch.randn(2, 2, 8, 8)
    x[1, 0, 3, 4] = float("nan")
    out = conv_block_train(x, block.model[0], block.model[1], 0.0)
    assert torch.isnan(out).any()


def test_a_compiler_without_openmp_still_builds_the_kernels(tmp_path):
    """Apple's clang has no -fopenmp: the next option is tried, and that single-threaded build computes
    what the torch ops compute."""
    if not shutil.which("cc"):
        pytest.skip("no cc here")
    fake = tmp_path / "cc-without-openmp"
    fake.write_text('#!/bin/sh\nfor a in "$@"; do [ "$a" = -fopenmp ] && { echo "unsupported option -fopenmp" >&2; '
                    'exit 1; }; done\nexec cc "$@"\n')
    fake.chmod(0o755)
    code = ("import copy, torch\nfrom handsign.models.kernels import fused, native\nfrom handsign.models import ConvBlock\n"
            "torch.manual_seed(0)\nblock = ConvBlock(3, 10, 0.0).train()\nx = torch.randn(4, 3, 9, 9)\n"
            "outs = []\nfor on in (True, False):\n"
            "    outs.append(fused.conv_block_train(x, *copy.deepcopy(list(block.model[:2])), 0.0, native_kernels=on))\n"
            "print(native.status(), '|', native.library().omp_threads(), '|', (outs[0] - outs[1]).abs().max().item())")
    env = {**os.environ, "CC": str(fake), "HANDSIGN_CACHE": str(tmp_path / "cache")}
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    status, threads, diff = done.stdout.strip().split(" | ")
    assert "-fopenmp" not in status and status.startswith("built with") and threads == "1"
    assert float(diff) < 1e-5


def test_block_is_bit_for_bit_repeatable_on_several_threads(path):
    """Same input, same seed, same threads -> the same bits (resume and reruns depend on it): the C kernels
    add their threads' partial sums in thread order, not in the order threads finish."""
    threads = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        runs = []
        for _ in range(5):
            block = _random_block(25, 50, 0.2, seed=6)
            x = torch.randn(32, 25, 14, 14, generator=torch.Generator().manual_seed(7)).requires_grad_()
            torch.manual_seed(8)
            out = conv_block_train(x, block.model[0], block.model[1], 0.2, native_kernels=_native(path))
            out.backward(torch.linspace(-1, 1, out.numel()).view(out.shape))
            runs.append([out.detach(), x.grad, block.model[1].weight.grad, block.model[1].running_var])
        for run in runs[1:]:
            assert all(torch.equal(a, b) for a, b in zip(run, runs[0]))
    finally:
        torch.set_num_threads(threads)
