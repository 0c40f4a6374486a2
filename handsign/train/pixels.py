"""The pixel family: MLPs and CNNs on pictures (MNIST, Sign-MNIST, an image folder), as the one loop
(handsign.train.loop) runs them: the data splits, the model, one epoch of steps and the evaluation.

Pictures stay resident as (N, 1, H, W) uint8 tensors; each batch goes through the one preprocessing
definition (handsign.images.preprocess.to_model_input) and the batched augmentation (handsign.images.augment).
"""

from __future__ import annotations

import math
import os
import time

import torch
import torch.nn.functional as F
from torch.optim.swa_utils import AveragedModel

from handsign.data.readers import Dataset, load_dataset, split_train_valid
from handsign.errors import DataError, HandsignError
from handsign.images.augment import augment_batch, get_augment
from handsign.images.preprocess import default_spec, to_model_input
from handsign.models import ConvBlock, create_model, for_inference, set_kernels
from handsign.models.kernels import native
from handsign.train import distributed
from handsign.train.config import TrainConfig
from handsign.train.optim import epoch_seed, lr_at, take_step, set_lr
from handsign.train.run import Splits, StopFlag, Stopped, versions
from handsign.train.machine import Progress, choose_threads, step_flop, use_bf16


class PixelTrainer:
    """What the loop asks of a family, for pictures (handsign.train.landmarks.LandmarkTrainer is the other)."""

    distributed = True  # --nproc N: DistributedDataParallel over N processes

    def __init__(self, cfg: TrainConfig):
        self.cfg = cfg

    def prepare(self) -> Splits:
        return prepare_data(self.cfg)

    def build(self, splits: Splits, device):
        """(model on `device`, its architecture record) for the run's classes and picture size."""
        cfg = self.cfg
        arch = {"name": cfg.model, "args": {"in_channels": 1, "image_size": splits.train.images.shape[-1],
                                            **cfg.model_args}}
        if cfg.kernels == "native" and native.library() is None:
            raise HandsignError(f"--kernels native: the C kernels are not available ({native.status()}); "
                                f"--kernels auto uses them where they build")
        model = create_model(cfg.model, len(splits.classes), **arch["args"]).to(device)
        return set_kernels(model, cfg.kernels), arch

    def prepare_model(self, model):
        """After the thread choice (which runs the model once): channels-last if asked."""
        if self.cfg.channels_last:  # checkpoints stay NCHW: save_checkpoint makes every tensor contiguous
            model = model.to(memory_format=torch.channels_last)
        return model

    def default_threads(self, model, splits: Splits, device) -> str:
        """--threads 0 on CPU: as many threads as cores are free now, 1 for a model too small to share a step
        (runtime.choose_threads); '' when the user, OMP_NUM_THREADS or torchrun already decided."""
        cfg = self.cfg
        if cfg.threads or device.type != "cpu" or distributed.world_size() > 1 or os.environ.get("OMP_NUM_THREADS"):
            return ""
        n, why = choose_threads(step_flop(model, cfg.batch_size, splits.train.images[:1].float()))
        torch.set_num_threads(n)
        return f"threads: {n} ({why}; --threads N overrides)"

    def kernels(self, model, device) -> str:
        """How the conv blocks train, in words ("" for a model without them or off the CPU)."""
        if device.type != "cpu" or not any(isinstance(m, ConvBlock) for m in model.modules()):
            return ""
        if self.cfg.kernels == "unfused":
            return "unfused torch modules (--kernels unfused)"
        if self.cfg.kernels != "torch" and native.library() is not None:
            return f"C kernels (handsign/models/kernels/fused_block.c, {native.status()})"
        return f"torch ops ({'--kernels torch' if self.cfg.kernels == 'torch' else native.status()})"

    def notes(self, model, device) -> list[str]:
        """Lines for the run's log: which conv-block kernels run, which precision."""
        lines = []
        if self.kernels(model, device):
            lines.append(f"conv blocks: {self.kernels(model, device)}")
        if self.cfg.precision == "auto":
            lines.append(f"precision: {'bf16' if use_bf16('auto', device) else 'fp32'} (auto: bf16 where "
                         f"{device.type} computes it natively)")
        return lines

    def before_training(self, splits: Splits, log) -> dict:
        return {}  # nothing to measure before training; the landmark family runs leave-one-person-out here

    def steps_per_epoch(self, splits: Splits) -> int:
        return math.ceil(distributed.shard_size(len(splits.train)) / self.cfg.batch_size)

    def train_one_epoch(self, net, data, optimizer, epoch, device, step0, total_steps, stop, show_progress, ema):
        return train_one_epoch(net, data, optimizer, self.cfg, epoch, device, step0, total_steps, stop,
                               show_progress, ema)

    def evaluate(self, model, data, device) -> dict:
        return distributed.evaluate_sharded(evaluate_tensors, model, data, self.cfg.eval_batch_size, device)

    def meta_fields(self, splits: Splits) -> dict:
        """What a checkpoint says of its input: pictures, and the preprocessing predict must repeat."""
        return {"labels": splits.classes, "task": self.cfg.dataset, "input": "image",
                "preprocess": default_spec(self.cfg.dataset, self.cfg.preprocess)}

    def versions(self, model, device) -> dict:
        """The software that made the weights; with the conv blocks' kernels, which round sums their own way."""
        kernels = self.kernels(model, device)
        return versions(**({"conv_blocks": kernels} if kernels else {}))


def prepare_data(cfg: TrainConfig) -> Splits:
    """Train / valid / test per the config: valid is carved from train unless the course's choice is on."""
    notes = []
    spec = default_spec(cfg.dataset, cfg.preprocess)  # what the checkpoint stores: predict reads files alike
    full = load_dataset(cfg.dataset, "train", cfg.data_dir, image_folder=cfg.image_folder, spec=spec)
    try:
        test = load_dataset(cfg.dataset, "test", cfg.data_dir, image_folder=cfg.image_folder, spec=spec)
    except DataError:
        if cfg.dataset != "folder":
            raise
        test = None
        notes.append("no test split (the image folder has no test/ subfolder)")
    if cfg.limit:
        full = full.subset(torch.arange(min(cfg.limit, len(full))))
        notes.append(f"--limit {cfg.limit}: using the first {len(full)} training samples only")
    if cfg.dataset == "folder" and full.labels.unique().numel() < 2:  # one class: "100 %" that means nothing
        raise DataError(f"{cfg.image_folder}: images of {full.labels.unique().numel()} class only "
                        f"({', '.join(full.classes)}); a classifier needs at least 2 class folders with images")
    if cfg.valid_from_test:
        if test is None:
            raise HandsignError("--valid-from-test needs a test split")
        train, valid = full, test
        notes.append("validating on the TEST file, as the course did: valid and test are the same data, "
                     "so the validation numbers are not an unbiased estimate")
    else:
        train, valid = split_train_valid(full, cfg.valid_fraction, cfg.seed, by=cfg.valid_split,
                                         similarity=cfg.group_similarity)
    if len(train) == 0 or len(valid) == 0:
        raise HandsignError(f"too little data: {len(train)} train and {len(valid)} valid samples "
                            f"(raise --limit or --valid-fraction)")
    info = {"dataset": cfg.dataset, "source": train.source, "n_train": len(train), "n_valid": len(valid),
            "n_test": len(test) if test is not None else 0, "train_fingerprint": train.fingerprint(),
            "valid_from_test": cfg.valid_from_test}
    return Splits(train, valid, test, notes, info, train.classes)


def train_one_epoch(model, data: Dataset, optimizer, cfg: TrainConfig, epoch: int, device,
                    step0: int, total_steps: int, stop: StopFlag | None = None, show_progress=True,
                    ema: AveragedModel | None = None) -> dict:
    """One pass over `data` in shuffled batches; returns mean loss, accuracy, images/s. `ema`, if given,
    averages the weights after every optimizer step."""
    model.train()
    torch.manual_seed(epoch_seed(cfg.seed, epoch))  # dropout
    g = torch.Generator().manual_seed(epoch_seed(cfg.seed, epoch))  # order + augmentation
    aug = get_augment(cfg.augment)
    n = len(data)
    perm = distributed.shard(torch.randperm(n, generator=g))  # same order on all ranks, then this rank's share
    distributed.seed_rank(epoch_seed(cfg.seed, epoch), g)  # own dropout + augmentation draws per rank
    steps = math.ceil(len(perm) / cfg.batch_size)
    images, labels = data.images.to(device), data.labels.to(device)  # (N, 1, H, W) uint8 stays resident
    progress = Progress(steps, f"epoch {epoch}/{cfg.epochs}", enabled=show_progress)
    loss_sum = torch.zeros((), device=device)
    correct = torch.zeros((), dtype=torch.long, device=device)
    bf16 = use_bf16(cfg.precision, device)
    start = time.perf_counter()
    for b in range(steps):
        idx = perm[b * cfg.batch_size:(b + 1) * cfg.batch_size].to(device)
        x = to_model_input(images[idx])  # (B, 1, H, W) in [0, 1]
        y = labels[idx]
        x = augment_batch(x, aug, g, per_batch=cfg.augment_per_batch)
        set_lr(optimizer, lr_at(step0 + b, total_steps, cfg))
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=bf16):
            logits = model(x).float()  # (B, classes); the loss and its softmax in fp32 either way
        loss = F.cross_entropy(logits, y, label_smoothing=cfg.label_smoothing)
        take_step(optimizer, loss, model, ema)
        loss_sum += loss.detach() * len(y)
        correct += (logits.argmax(1) == y).sum()
        progress.update(len(y), loss.item() if progress.tty else None)
        if stop is not None and (signum := distributed.agreed_signal(stop.signum, b, steps)):
            stop.signum = signum  # every rank stops at this step, also one that was not signalled itself
            raise Stopped
    seconds = time.perf_counter() - start
    loss_sum, correct = distributed.all_reduce_sum(loss_sum, correct)  # global sums over ranks
    n = len(perm) * distributed.world_size()
    return {"train_loss": loss_sum.item() / n, "train_acc": correct.item() / n,
            "seconds": seconds, "images_per_s": n / seconds}


@torch.inference_mode()
def predict_tensors(model, images: torch.Tensor, batch_size: int = 1000, device="cpu") -> torch.Tensor:
    """(N, 1, H, W) uint8 -> (N, classes) float32 logits, in eval mode, batched."""
    model.eval()
    net = for_inference(model)  # BatchNorm folded: ~2.5x faster on CPU, same logits to float32 rounding
    out = [net(to_model_input(images[i:i + batch_size].to(device))).float().cpu()
           for i in range(0, len(images), batch_size)]
    return torch.cat(out) if out else torch.empty(0)


def evaluate_tensors(model, data: Dataset, batch_size: int = 1000, device="cpu") -> dict:
    """Mean loss and accuracy of `model` on `data` (eval mode, no augmentation)."""
    logits = predict_tensors(model, data.images, batch_size, device)
    return {"loss": F.cross_entropy(logits, data.labels).item(),
            "acc": (logits.argmax(1) == data.labels).float().mean().item()}
