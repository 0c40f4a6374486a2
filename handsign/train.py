"""Training: one loop over in-memory tensors, per-epoch metrics, checkpoints, resume, clean Ctrl-C.

    train(make_config("course-asl-cnn", epochs=2)) -> RunResult

Each epoch re-seeds dropout, shuffling and augmentation from (seed, epoch), and the learning rate
is a pure function of the step, so a run resumed from the checkpoint of epoch k ends with exactly
the metrics of an uninterrupted run with the same seed.
"""

from __future__ import annotations

import csv
import datetime as _dt
import io
import json
import math
import os
import platform
import signal
import time
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn

from handsign import __version__, distributed, native
from handsign.atomic import atomic_write_bytes, remove_stale_temps
from handsign.checkpoint import (load_model, load_train_state, optimizer_state_from_tensors,
                                 optimizer_state_to_tensors, read_metadata, save_checkpoint)
from handsign.config import TrainConfig
from handsign.data import Dataset, load_dataset, split_train_valid
from handsign.diagnosis import diagnose
from handsign.errors import DataError, HandsignError
from handsign.evaluate import evaluate_tensors
from handsign.meta import ModelMeta
from handsign.models import ConvBlock, count_parameters, create_model
from handsign.plots import learning_curves
from handsign.preprocess import default_spec, to_model_input
from handsign.runtime import Progress, choose_threads, setup, step_flop, use_bf16
from handsign.transforms import augment_batch, get_augment


class TrainingInterrupted(HandsignError):
    """SIGINT/SIGTERM stopped training; the last finished epoch is saved and resumable."""

    def __init__(self, signum: int, run_dir: Path, epoch: int):
        self.signum, self.run_dir, self.epoch = signum, run_dir, epoch
        name = signal.Signals(signum).name
        super().__init__(f"{name}: training stopped; epoch {epoch} is saved in {run_dir}/last.safetensors. "
                         f"Resume with: handsign train --resume {run_dir}")


@dataclass
class RunResult:
    run_dir: Path
    history: list          # one dict per epoch
    metrics: dict          # final summary: best epoch, train/valid/test accuracy...
    diagnosis: dict
    best: Path
    last: Path


@dataclass
class Splits:
    train: Dataset
    valid: Dataset
    test: Dataset | None
    notes: list


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
    return Splits(train, valid, test, notes)


def make_optimizer(model, cfg: TrainConfig) -> torch.optim.Optimizer:
    params = model.parameters()
    if cfg.optimizer == "adam":
        return torch.optim.Adam(params, lr=cfg.lr, weight_decay=cfg.weight_decay)
    if cfg.optimizer == "adamw":
        return torch.optim.AdamW(params, lr=cfg.lr, weight_decay=cfg.weight_decay)
    return torch.optim.SGD(params, lr=cfg.lr, momentum=0.9, nesterov=True, weight_decay=cfg.weight_decay)


def lr_at(step: int, total: int, cfg: TrainConfig) -> float:
    """Learning rate of optimizer step `step` (0-based) of `total`: a pure function, so resume is exact."""
    t = step / max(total, 1)
    if cfg.schedule == "onecycle":  # linear warm-up over 25 %, then linear decay to ~0
        return cfg.lr * (t / 0.25 if t < 0.25 else max(1 - t, 0.0) / 0.75)
    if cfg.schedule == "cosine":
        return cfg.lr * 0.5 * (1 + math.cos(math.pi * t))
    return cfg.lr


def epoch_seed(seed: int, epoch: int) -> int:
    return seed * 100_003 + epoch


class _StopFlag:
    """Records SIGINT/SIGTERM during training; the loop stops at the next batch boundary."""

    def __init__(self):
        self.signum = 0
        self._old = {}

    def __enter__(self):
        for s in (signal.SIGINT, signal.SIGTERM):
            try:
                self._old[s] = signal.signal(s, self._handle)
            except ValueError:  # not the main thread: leave signals alone
                pass
        return self

    def _handle(self, signum, frame):
        self.signum = signum

    def __exit__(self, *exc):
        for s, h in self._old.items():
            signal.signal(s, h)


class _Stopped(Exception):
    pass


def train_one_epoch(model, data: Dataset, optimizer, cfg: TrainConfig, epoch: int, device,
                    step0: int, total_steps: int, stop: _StopFlag | None = None, show_progress=True,
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
        for group in optimizer.param_groups:
            group["lr"] = lr_at(step0 + b, total_steps, cfg)
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=bf16):
            logits = model(x).float()  # (B, classes); the loss and its softmax in fp32 either way
        loss = F.cross_entropy(logits, y, label_smoothing=cfg.label_smoothing)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        if ema is not None:
            ema.update_parameters(model)
        loss_sum += loss.detach() * len(y)
        correct += (logits.argmax(1) == y).sum()
        progress.update(len(y), loss.item() if progress.tty else None)
        if stop is not None and (signum := distributed.agreed_signal(stop.signum, b, steps)):
            stop.signum = signum  # every rank stops at this step, also one that was not signalled itself
            raise _Stopped
    seconds = time.perf_counter() - start
    loss_sum, correct = distributed.all_reduce_sum(loss_sum, correct)  # global sums over ranks
    n = len(perm) * distributed.world_size()
    return {"train_loss": loss_sum.item() / n, "train_acc": correct.item() / n,
            "seconds": seconds, "images_per_s": n / seconds}


def _versions() -> dict:
    return {"handsign": __version__, "torch": torch.__version__, "python": platform.python_version()}


def _write_metrics(run_dir: Path, history: list, summary: dict | None = None):
    cols = ["epoch", "train_loss", "train_acc", "valid_loss", "valid_acc", "lr", "seconds", "images_per_s"]
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=cols, extrasaction="ignore")
    w.writeheader()
    w.writerows(history)
    atomic_write_bytes(run_dir / "metrics.csv", buf.getvalue().encode())
    doc = {"history": history, **(summary or {})}
    atomic_write_bytes(run_dir / "metrics.json", json.dumps(doc, indent=2).encode())


def _default_run_dir(cfg: TrainConfig) -> Path:
    stamp = _dt.datetime.now().strftime("%Y%m%d-%H%M%S")
    return Path("runs") / f"{cfg.recipe or cfg.model + '-' + cfg.dataset}-{stamp}"


def _default_threads(cfg: TrainConfig, model, data: Dataset, device) -> str:
    """--threads 0 on CPU: as many threads as cores are free now, 1 for a model too small to share a step
    (runtime.choose_threads); '' when the user, OMP_NUM_THREADS or torchrun already decided."""
    if cfg.threads or device.type != "cpu" or distributed.world_size() > 1 or os.environ.get("OMP_NUM_THREADS"):
        return ""
    n, why = choose_threads(step_flop(model, cfg.batch_size, data.images[:1].float()))
    torch.set_num_threads(n)
    return f"threads: {n} ({why}; --threads N overrides)"


def train(config: TrainConfig | None = None, *, resume=None, epochs: int | None = None,
          log=print, show_progress: bool = True) -> RunResult:
    """Train per `config`, or continue the run folder `resume` (optionally to a new `epochs`)."""
    try:
        return _train(config, resume=resume, epochs=epochs, log=log, show_progress=show_progress)
    except BaseException as e:
        if distributed.active():  # the failed frames hold the DDP wrapper: free it before the group goes
            distributed.release(e)
        raise
    finally:
        # every path (finished, stopped by a signal, any error) leaves the process group, so no other
        # rank waits on this one; _train's frame, and the DDP wrapper in it, is gone by now
        distributed.cleanup()


def _train(config: TrainConfig | None, *, resume, epochs: int | None, log, show_progress: bool) -> RunResult:
    if resume is not None:
        run_dir = Path(resume)
        if not (run_dir / "config.json").is_file():
            raise HandsignError(f"--resume {run_dir}: not a handsign run folder (no config.json)")
        saved = json.loads((run_dir / "config.json").read_text())
        if str(saved.get("recipe", "")).startswith("hands"):
            raise HandsignError(f"--resume {run_dir}: a hands-recipe run, which trains in seconds and cannot be "
                                f"resumed; train it again: handsign train --recipe {saved['recipe']}")
        cfg = TrainConfig.from_dict(saved)
        remove_stale_temps(run_dir)  # left by a kill during a save; this run owns the folder
        if epochs is not None:  # --epochs 0 is an error to report, not "keep the old count"
            cfg.epochs = epochs
            cfg.__post_init__()
    else:
        cfg = config or TrainConfig()
        run_dir = Path(cfg.out) if cfg.out else _default_run_dir(cfg)
        in_the_way = next((p for p in (run_dir, *run_dir.parents) if p.exists() and not p.is_dir()), None)
        if in_the_way is not None:  # said now, not after loading the data
            raise HandsignError(f"--out {run_dir}: {in_the_way} is a file, not a folder (name a new or empty "
                                f"folder for the run)")
        if run_dir.exists() and any(run_dir.iterdir()):
            raise HandsignError(f"--out {run_dir}: folder exists and is not empty (use --resume {run_dir} "
                                f"to continue it, or another --out)")
        cfg.out = str(run_dir)

    device = distributed.init(setup(cfg.seed, cfg.device, cfg.threads))  # torchrun: join the group
    run_dir = distributed.broadcast(run_dir)
    log = distributed.main_only(log)
    splits = prepare_data(cfg)
    classes = splits.train.classes
    spec = default_spec(cfg.dataset, cfg.preprocess)
    arch = {"name": cfg.model, "args": {"in_channels": 1, "image_size": splits.train.images.shape[-1],
                                        **cfg.model_args}}
    model = create_model(cfg.model, len(classes), **arch["args"]).to(device)
    threads_note = _default_threads(cfg, model, splits.train, device)
    if cfg.channels_last:  # checkpoints stay NCHW: save_checkpoint makes every tensor contiguous
        model = model.to(memory_format=torch.channels_last)
    optimizer = make_optimizer(model, cfg)
    # with --ema the averaged copy is what is evaluated and saved as the model; `model` keeps training
    ema = AveragedModel(model, multi_avg_fn=get_ema_multi_avg_fn(cfg.ema), use_buffers=True) if cfg.ema else None
    output = ema.module if ema is not None else model
    steps_per_epoch = math.ceil(distributed.shard_size(len(splits.train)) / cfg.batch_size)
    total_steps = steps_per_epoch * cfg.epochs

    history, start_epoch, best = [], 1, (-1.0, 0.0)
    if resume is not None and (run_dir / "last.safetensors").exists():  # else killed before its first save
        model_state, tensors, meta = load_train_state(run_dir / "last.safetensors")
        output.load_state_dict(model_state)
        if ema is not None:  # the weights being trained are train-state tensors "model.<key>"
            model.load_state_dict({k[6:]: v for k, v in tensors.items() if k.startswith("model.")})
            ema.n_averaged.fill_(meta.train_state["ema_updates"])
        optimizer.load_state_dict(optimizer_state_from_tensors(tensors, meta.train_state["optimizer"]))
        history = meta.train_state["history"]
        start_epoch = meta.train_state["epoch"] + 1
        if epochs is not None and epochs < start_epoch - 1:  # before config.json is rewritten with it
            raise HandsignError(f"--epochs {epochs}: {run_dir} has already trained {start_epoch - 1} epochs; "
                                f"give more to train further")
        best = max(((h["valid_acc"], -h["valid_loss"]) for h in history), default=best)
        if threads_note and meta.train_state.get("threads"):  # same threads, same float sums: exact resume
            torch.set_num_threads(meta.train_state["threads"])
            threads_note = f"threads: {meta.train_state['threads']} (as the run being resumed; --threads N overrides)"
    net = distributed.wrap(model, device)  # DDP when distributed; `model` is what we evaluate and save
    if distributed.is_main():  # only rank 0 writes into the run folder
        run_dir.mkdir(parents=True, exist_ok=True)
        atomic_write_bytes(run_dir / "config.json", json.dumps(cfg.to_dict(), indent=2).encode())

    log(f"handsign {__version__} | {'resuming' if resume else 'run'} {run_dir} | device {device} | "
        f"{cfg.model}: {count_parameters(model):,} parameters")
    log(cfg.describe())
    if threads_note:
        log(threads_note)
    if device.type == "cpu" and any(isinstance(m, ConvBlock) for m in model.modules()):
        log(f"conv blocks: C kernels (handsign/fused_block.c, {native.status()})" if native.library() is not None
            else f"conv blocks: torch ops ({native.status()})")
    if cfg.precision == "auto":
        log(f"precision: {'bf16' if use_bf16('auto', device) else 'fp32'} (auto: bf16 where {device.type} "
            f"computes it natively)")
    log(f"data: {cfg.dataset} train {len(splits.train)}, valid {len(splits.valid)}, "
        f"test {len(splits.test) if splits.test is not None else 0}")
    for note in splits.notes:
        log(f"NOTE: {note}")

    data_info = {"dataset": cfg.dataset, "source": splits.train.source, "n_train": len(splits.train),
                 "n_valid": len(splits.valid), "n_test": len(splits.test) if splits.test is not None else 0,
                 "train_fingerprint": splits.train.fingerprint(), "valid_from_test": cfg.valid_from_test}

    def meta_for(metrics: dict, train_state: dict | None = None) -> ModelMeta:
        return ModelMeta(architecture=arch, labels=classes, task=cfg.dataset, preprocess=spec, recipe=cfg.recipe,
                         config=cfg.to_dict(), metrics=metrics, data=data_info, versions=_versions(),
                         created=_dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
                         train_state=train_state)

    def save_last(epoch: int):
        if not distributed.is_main():
            return
        tensors, opt_info = optimizer_state_to_tensors(optimizer)
        state = {"epoch": epoch, "history": history, "optimizer": opt_info, "threads": torch.get_num_threads()}
        if ema is not None:
            tensors.update({"model." + k: v for k, v in model.state_dict().items()})
            state["ema_updates"] = int(ema.n_averaged)
        metrics = history[-1] if history else {}
        save_checkpoint(run_dir / "last.safetensors", output, meta_for(dict(metrics), state), tensors)

    if not history:
        save_last(0)  # resumable from the very start: Ctrl-C in epoch 1 loses nothing but time

    epoch = start_epoch - 1
    if start_epoch > cfg.epochs:
        log(f"NOTE: {run_dir} has already trained {start_epoch - 1} epochs: nothing to train (a larger --epochs "
            f"trains further); testing the saved models again")
    with _StopFlag() as stop:
        try:
            for epoch in range(start_epoch, cfg.epochs + 1):
                tr = train_one_epoch(net, splits.train, optimizer, cfg, epoch, device, (epoch - 1) * steps_per_epoch,
                                     total_steps, stop, show_progress and distributed.is_main(), ema)
                va = distributed.evaluate_sharded(evaluate_tensors, output, splits.valid, cfg.eval_batch_size, device)
                row = {"epoch": epoch, **tr, "valid_loss": va["loss"], "valid_acc": va["acc"],
                       "lr": optimizer.param_groups[0]["lr"]}
                history.append(row)
                # best = highest valid accuracy; a tie (common once valid saturates) goes to the lower loss
                is_best = (va["acc"], -va["loss"]) > best
                if is_best:
                    best = (va["acc"], -va["loss"])
                    if distributed.is_main():
                        save_checkpoint(run_dir / "best.safetensors", output, meta_for(dict(row)))
                save_last(epoch)
                if distributed.is_main():
                    _write_metrics(run_dir, history)
                log(f"epoch {epoch:>3}/{cfg.epochs}  train loss {tr['train_loss']:.4f} acc {tr['train_acc']:.2%}  "
                    f"valid loss {va['loss']:.4f} acc {va['acc']:.2%}  {tr['seconds']:.1f}s "
                    f"{tr['images_per_s']:,.0f} img/s" + ("  *best" if is_best else ""))
        except _Stopped:
            raise TrainingInterrupted(stop.signum, run_dir, epoch - 1) from None

    distributed.check_same_weights(model, log)
    # rank 0 tests and writes the final metrics; the others wait, then return only the history
    result = finish(run_dir, log=log, splits=splits, device=device) if distributed.is_main() else RunResult(
        run_dir, history, {}, {}, run_dir / "best.safetensors", run_dir / "last.safetensors")
    distributed.barrier()
    return result  # train() leaves the group once this frame (and `net`, the DDP wrapper) is gone


def finish(run_dir: Path, log=print, splits: Splits | None = None, device=None) -> RunResult:
    """After the last epoch: test accuracy of best and last, curves, diagnosis, final metrics."""
    cfg = TrainConfig.from_dict(json.loads((run_dir / "config.json").read_text()))
    if splits is None:  # called on its own (e.g. to re-evaluate a finished run): load the data again
        device = setup(cfg.seed, cfg.device, cfg.threads)
        splits = prepare_data(cfg)
    history = read_metadata(run_dir / "last.safetensors").train_state["history"]
    results = {}
    for name in ("best", "last"):
        path = run_dir / f"{name}.safetensors"
        loaded = load_model(path, device=str(device))
        metrics = dict(loaded.meta.metrics)
        if splits.test is not None:
            te = evaluate_tensors(loaded.model, splits.test, cfg.eval_batch_size, device)
            metrics.update(test_loss=te["loss"], test_acc=te["acc"])
        tensors = {}
        if name == "last":
            _, tensors, _ = load_train_state(path)
        save_checkpoint(path, loaded.model, loaded.meta.replace(metrics=metrics), tensors)
        results[name] = metrics
    diag = diagnose(history, test_acc=results["last"].get("test_acc"))
    best = results["best"]
    summary = {"best_epoch": best["epoch"], "best": best, "last": results["last"], "diagnosis": diag,
               "recipe": cfg.recipe, "valid_from_test": cfg.valid_from_test}
    _write_metrics(run_dir, history, summary)
    learning_curves(history, run_dir / "curves.png", title=f"{cfg.recipe or cfg.model} ({cfg.dataset})")
    test_txt = f", test {best['test_acc']:.2%}" if "test_acc" in best else ""
    log(f"best epoch {best['epoch']}: train {best['train_acc']:.2%}, valid {best['valid_acc']:.2%}{test_txt}")
    log(f"diagnosis: {diag['text']}")
    log(f"saved {run_dir}/best.safetensors, last.safetensors, metrics.csv, metrics.json, curves.png")
    return RunResult(run_dir, history, summary, diag, run_dir / "best.safetensors", run_dir / "last.safetensors")
