"""Model registry: the course's MLP and CNN, built so their layouts match the course's nn.Sequential
state-dict keys exactly (so course models can be imported weight for weight). Models return logits."""

from __future__ import annotations

import copy

import torch
from torch import nn
from torch.nn.utils.fusion import fuse_conv_bn_eval

from handsign.errors import HandsignError
from handsign.models.kernels import KERNELS
from handsign.models.kernels.fused import Dropout, conv_block_train


class ConvBlock(nn.Module):
    """3x3 conv (pad 1) -> BatchNorm -> ReLU -> Dropout -> 2x2 max-pool: halves H and W.

    Same layout as the course's MyConvBlock (`self.model` = that Sequential), hence the same keys.
    convs > 1 puts convs - 1 more [3x3 conv -> BatchNorm -> ReLU] before it, at full resolution (`self.pre`,
    VGG-style: more capacity before the pool throws detail away); convs == 1 has no `pre` and the course's keys.
    In training `pre` runs in torch ops and the pooled conv after it keeps the fused path below.
    """

    def __init__(self, in_channels: int, out_channels: int, dropout: float = 0.0, convs: int = 1):
        super().__init__()
        self.pre = None
        if convs > 1:
            layers, c = [], in_channels
            for _ in range(convs - 1):
                layers += [nn.Conv2d(c, out_channels, kernel_size=3, padding=1), nn.BatchNorm2d(out_channels), nn.ReLU()]
                c = out_channels
            self.pre, in_channels = nn.Sequential(*layers), out_channels
        self.model = nn.Sequential(
            nn.Conv2d(in_channels, out_channels, kernel_size=3, stride=1, padding=1),
            nn.BatchNorm2d(out_channels),
            nn.ReLU(),
            nn.Dropout(dropout),
            nn.MaxPool2d(2, stride=2),
        )

        # how it trains on CPU (set_kernels; the run config's `kernels`): "auto" = the fused path of
        # handsign.models.kernels (the same math as self.model in fewer passes over memory) in C where a compiler
        # is found, else in torch ops; "native" = in C; "torch" = in torch ops; "unfused" = self.model itself
        self.kernels = "auto"

    def forward(self, x):
        fused = self.takes_fused_path(x)  # decided on the block's input: under autocast `pre` answers in bfloat16
        if self.pre is not None:
            x = self.pre(x)
        if fused:
            conv, bn, _, dropout, _ = self.model
            return conv_block_train(x, conv, bn, dropout.p, native_kernels=self.kernels != "torch")
        return self.model(x)

    def takes_fused_path(self, x) -> bool:
        """Whether `x` trains through handsign.models.kernels.fused: unless kernels is "unfused", for float32
        (N, C, H, W) batches on CPU in training mode. Eval, ONNX export, float64 and CUDA/MPS always run the plain
        self.model."""
        _, bn, _, dropout, _ = self.model
        return (self.kernels != "unfused" and self.training and bn.training and dropout.p < 1
                and x.device.type == "cpu" and x.dtype == torch.float32 and x.dim() == 4)


class MLP(nn.Sequential):
    """Flatten -> [Linear -> ReLU] * len(hidden) -> Linear. Course: 784-512-512-10 (669,706 params)."""

    def __init__(self, num_classes: int = 10, in_channels: int = 1, image_size: int = 28,
                 hidden: tuple = (512, 512)):
        layers, width = [nn.Flatten()], in_channels * image_size * image_size
        for h in hidden:
            layers += [nn.Linear(width, h), nn.ReLU()]
            width = h
        layers.append(nn.Linear(width, num_classes))
        super().__init__(*layers)


class CNN(nn.Sequential):
    """ConvBlocks -> Flatten -> Linear -> Dropout -> ReLU -> Linear. Course: 404,099 params on ASL.

    convs: convolutions per block (ConvBlock), e.g. (2, 2, 1) for two at 28x28 and at 14x14; () = one each."""

    def __init__(self, num_classes: int = 24, in_channels: int = 1, image_size: int = 28,
                 channels: tuple = (25, 50, 75), dropouts: tuple = (0.0, 0.2, 0.0),
                 hidden: int = 512, head_dropout: float = 0.3, flip_average: bool = False, convs: tuple = ()):
        if len(dropouts) != len(channels):
            raise HandsignError(f"cnn: {len(channels)} channels but {len(dropouts)} dropouts")
        convs = tuple(convs) or (1,) * len(channels)  # convolutions per block (ConvBlock's convs); () = 1 each
        if len(convs) != len(channels) or not all(isinstance(n, int) and n >= 1 for n in convs):
            raise HandsignError(f"cnn: convs must be {len(channels)} whole numbers >= 1, one per block, got {list(convs)}")
        blocks, c = [], in_channels
        for out, p, n in zip(channels, dropouts, convs):
            blocks.append(ConvBlock(c, out, p, n))
            c = out
        side = image_size // 2 ** len(channels)  # each block halves (floor): 28 -> 14 -> 7 -> 3
        if side < 1:
            raise HandsignError(f"cnn: image size {image_size} is too small for {len(channels)} blocks")
        super().__init__(*blocks, nn.Flatten(), nn.Linear(c * side * side, hidden),
                         Dropout(head_dropout), nn.ReLU(), nn.Linear(hidden, num_classes))
        # test-time augmentation inside the model, so predict, serve and ONNX all do it: in eval mode the
        # logits are the mean of the picture's and its mirror image's (for models trained with mirroring)
        self.flip_average = flip_average

    def forward(self, x):  # (N, C, H, W) -> (N, classes) logits
        if self.flip_average and not self.training:
            return (super().forward(x) + super().forward(x.flip(-1))) / 2
        return super().forward(x)


class LandmarkMLP(nn.Module):
    """Hand-landmark features -> standardise -> [Linear -> ReLU -> Dropout] * len(hidden) -> Linear.

    The feature mean and spread of the training set are buffers (saved with the weights and exported
    to ONNX), so callers feed raw `handsign.hands.features` vectors. in_channels and image_size are the
    registry's common arguments and unused here."""

    def __init__(self, num_classes: int = 24, in_channels: int = 1, image_size: int = 28, in_features: int = 102,
                 hidden: tuple = (256, 256), dropout: float = 0.2):
        super().__init__()
        self.register_buffer("mean", torch.zeros(in_features))
        self.register_buffer("std", torch.ones(in_features))
        layers, width = [], in_features
        for h in hidden:
            layers += [nn.Linear(width, h), nn.ReLU(), nn.Dropout(dropout)]
            width = h
        layers.append(nn.Linear(width, num_classes))
        self.net = nn.Sequential(*layers)

    def forward(self, x):  # (N, in_features) -> (N, classes) logits
        return self.net((x - self.mean) / self.std)


MODELS = {"mlp": MLP, "cnn": CNN, "landmark_mlp": LandmarkMLP}


def set_kernels(model: nn.Module, kernels: str) -> nn.Module:
    """How every ConvBlock of `model` trains on CPU (ConvBlock.kernels); returns the model."""
    if kernels not in KERNELS:
        raise HandsignError(f"--kernels: unknown {kernels!r}; choose from {', '.join(KERNELS)}")
    for m in model.modules():
        if isinstance(m, ConvBlock):
            m.kernels = kernels
    return model


def create_model(name: str, num_classes: int, in_channels: int = 1, image_size: int = 28, **kwargs) -> nn.Module:
    """Build a registered model; an unknown name or argument gives a HandsignError listing valid ones."""
    if name not in MODELS:
        raise HandsignError(f"unknown model {name!r}; choose from: {', '.join(MODELS)}")
    try:
        return MODELS[name](num_classes=num_classes, in_channels=in_channels, image_size=image_size, **kwargs)
    except TypeError as e:
        raise HandsignError(f"model {name!r}: bad arguments {kwargs} ({e})") from None


def for_inference(model: nn.Module) -> nn.Module:
    """An eval-mode copy for fast inference: each ConvBlock's BatchNorm folded into its conv (the same
    function, to float32 rounding), its max-pool moved before its ReLU (they commute exactly: ReLU is
    monotonic, and eval-mode Dropout is the identity), so ReLU touches a 4x smaller tensor, and, on CPU,
    channels-last. On 2 cores folding ran the course CNN at batch 256 in 16 ms instead of 42 ms (BatchNorm
    is slow in channels-last); pooling first takes a quarter off what is left for round three's narrow fast-asl CNN.
    The copy has no BatchNorm keys: evaluate with it, never save it."""
    net = copy.deepcopy(model).eval()
    for block in net.modules():
        if isinstance(block, ConvBlock) and block.pre is not None and isinstance(block.pre[1], nn.BatchNorm2d):
            layers = list(block.pre)  # [conv, BatchNorm, ReLU] per extra conv -> [folded conv, ReLU]
            block.pre = nn.Sequential(*(m for i in range(0, len(layers), 3)
                                        for m in (fuse_conv_bn_eval(layers[i], layers[i + 1]), nn.ReLU(inplace=True))))
        if isinstance(block, ConvBlock) and isinstance(block.model[1], nn.BatchNorm2d):
            conv, bn, _, dropout, pool = block.model  # conv, BatchNorm, ReLU, Dropout, max-pool
            # same 5 slots (ConvBlock.takes_fused_path reads them): conv, -, pool, dropout, ReLU
            block.model = nn.Sequential(fuse_conv_bn_eval(conv, bn), nn.Identity(), pool, dropout,
                                        nn.ReLU(inplace=True))
    first = next(net.parameters(), None)
    if first is not None and first.device.type == "cpu":
        net = net.to(memory_format=torch.channels_last)
    return net


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def num_outputs(model: nn.Module) -> int:
    """Width of the last Linear layer: the number of classes the model predicts."""
    last = [m for m in model.modules() if isinstance(m, nn.Linear)][-1]
    return last.out_features


@torch.no_grad()
def flops_per_image(model: nn.Module, in_channels: int = 1, image_size: int = 28,
                    layers: tuple = (nn.Conv2d, nn.Linear)) -> int:
    """Multiply-adds x 2 of one forward pass, counted from `layers` (conv and linear) via hooks."""
    total = 0

    def hook(mod, inp, out):
        nonlocal total
        if isinstance(mod, nn.Conv2d):
            k = mod.kernel_size[0] * mod.kernel_size[1] * mod.in_channels // mod.groups
            total += 2 * out[0].numel() * k
        elif isinstance(mod, nn.Linear):
            total += 2 * mod.in_features * mod.out_features

    handles = [m.register_forward_hook(hook) for m in model.modules() if isinstance(m, tuple(layers))]
    was_training = model.training
    model.eval()
    p = next(model.parameters())
    model(torch.zeros(1, in_channels, image_size, image_size, device=p.device, dtype=p.dtype))
    model.train(was_training)
    for h in handles:
        h.remove()
    return total
