"""Training: one loop for every model family, with per-epoch metrics, keep-best, resume and a clean Ctrl-C.

    train(make_config("course-asl-cnn", epochs=2)) -> RunResult       # a pixel model
    train(make_config("hands-asl"))                                   # the landmark model, the same way
    train(resume="runs/course-asl-cnn-...", epochs=30)                # continue a stopped or finished run

A family (FAMILIES: handsign.train.pixels, handsign.train.landmarks) gives the data splits, the model, one
epoch of steps and the evaluation; everything else is here, once: the run folder, the printed config, the
progress line, the best (highest valid accuracy) and last checkpoints, the test figures, the diagnosis and the
curves. Each epoch re-seeds its randomness from (seed, epoch) and the learning rate is a pure function of the
step, so a run resumed from the checkpoint of epoch k ends with exactly the metrics of an uninterrupted run.
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn

from handsign import __version__
from handsign.errors import HandsignError
from handsign.models import count_parameters
from handsign.saved.checkpoint import (load_train_state, optimizer_state_from_tensors, optimizer_state_to_tensors,
                                       read_metadata, save_checkpoint)
from handsign.saved.meta import ModelMeta
from handsign.train import distributed
from handsign.train.config import TrainConfig
from handsign.train.diagnosis import diagnose
from handsign.train.landmarks import LandmarkTrainer
from handsign.train.optim import lr_at, make_optimizer  # noqa: F401 (part of this module's API)
from handsign.train.pixels import PixelTrainer, evaluate_tensors, prepare_data, train_one_epoch  # noqa: F401
from handsign.train.plots import learning_curves
from handsign.train.run import (RunResult, Splits, StopFlag, Stopped, TrainingInterrupted, new_run_dir,  # noqa: F401
                                now_utc, resumed_config, write_config, write_metrics)
from handsign.train.machine import setup

FAMILIES = {"pixels": PixelTrainer, "landmarks": LandmarkTrainer}  # a config class's `family` -> its trainer


def train(config=None, *, resume=None, epochs: int | None = None, log=print, show_progress: bool = True) -> RunResult:
    """Train per `config` (a TrainConfig or HandsConfig, e.g. from make_config), or continue the run folder
    `resume` (optionally to a new `epochs`)."""
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


class _Run:
    """One run's state: the config, its family, the data, the model being trained and the one saved
    (`output`: the weights' moving average with --ema), the optimizer and the history so far."""

    def __init__(self, cfg, run_dir: Path, device, log):
        self.cfg, self.run_dir, self.device, self.log = cfg, run_dir, device, log
        self.family = FAMILIES[cfg.family](cfg)
        if distributed.world_size() > 1 and not self.family.distributed:
            raise HandsignError(f"--nproc: recipe {cfg.recipe} ({cfg.family} models) trains in one process")
        self.splits: Splits = self.family.prepare()
        model, self.arch = self.family.build(self.splits, device)
        self.threads_note = self.family.default_threads(model, self.splits, device)
        self.model = self.family.prepare_model(model)
        self.optimizer = make_optimizer(self.model, cfg)
        # with --ema the averaged copy is what is evaluated and saved as the model; `model` keeps training
        self.ema = AveragedModel(self.model, multi_avg_fn=get_ema_multi_avg_fn(cfg.ema),
                                 use_buffers=True) if cfg.ema else None
        self.output = self.ema.module if self.ema is not None else self.model
        self.steps_per_epoch = self.family.steps_per_epoch(self.splits)
        self.history: list[dict] = []
        self.best = (-1.0, 0.0)  # (valid accuracy, -valid loss) of the best epoch so far
        self.best_metrics: dict = {}
        self.extra: dict = {}  # figures measured before training (leave-one-person-out), kept in every checkpoint
        self.versions = self.family.versions(self.model, device)

    def restore(self, epochs: int | None) -> int:
        """Load last.safetensors of the run being resumed; returns the first epoch still to train."""
        model_state, tensors, meta = load_train_state(self.run_dir / "last.safetensors")
        self.output.load_state_dict(model_state)
        state = meta.train_state
        if self.ema is not None:  # the weights being trained are train-state tensors "model.<key>"
            self.model.load_state_dict({k[6:]: v for k, v in tensors.items() if k.startswith("model.")})
            self.ema.n_averaged.fill_(state["ema_updates"])
        self.optimizer.load_state_dict(optimizer_state_from_tensors(tensors, state["optimizer"]))
        self.history, self.extra = state["history"], state.get("extra", {})
        if epochs is not None and epochs < state["epoch"]:  # before config.json is rewritten with it
            raise HandsignError(f"--epochs {epochs}: {self.run_dir} has already trained {state['epoch']} epochs; "
                                f"give more to train further")
        self.best = max(((h["valid_acc"], -h["valid_loss"]) for h in self.history), default=self.best)
        if (self.run_dir / "best.safetensors").exists():
            self.best_metrics = read_metadata(self.run_dir / "best.safetensors").metrics
        if self.threads_note and state.get("threads"):  # same threads, same float sums: exact resume
            torch.set_num_threads(state["threads"])
            self.threads_note = f"threads: {state['threads']} (as the run being resumed; --threads N overrides)"
        return state["epoch"] + 1

    def meta(self, metrics: dict, train_state: dict | None = None) -> ModelMeta:
        return ModelMeta(architecture=self.arch, recipe=self.cfg.recipe, config=self.cfg.to_dict(),
                         metrics={**metrics, **self.extra}, data=self.splits.info, versions=self.versions,
                         created=now_utc(), train_state=train_state, **self.family.meta_fields(self.splits))

    def tested(self, row: dict) -> dict:
        """`row` with the output model's loss and accuracy on the test split (when there is one)."""
        if self.splits.test is None:
            return dict(row)
        te = self.family.evaluate(self.output, self.splits.test, self.device)
        return {**row, "test_loss": te["loss"], "test_acc": te["acc"]}

    def save_best(self, row: dict) -> None:
        self.best_metrics = self.tested(row)  # the test figure is recorded, never used to choose
        if distributed.is_main():
            save_checkpoint(self.run_dir / "best.safetensors", self.output, self.meta(self.best_metrics))

    def save_last(self, epoch: int, metrics: dict) -> None:
        if not distributed.is_main():
            return
        tensors, opt_info = optimizer_state_to_tensors(self.optimizer)
        state = {"epoch": epoch, "history": self.history, "optimizer": opt_info,
                 "threads": torch.get_num_threads(), "extra": self.extra}
        if self.ema is not None:
            tensors.update({"model." + k: v for k, v in self.model.state_dict().items()})
            state["ema_updates"] = int(self.ema.n_averaged)
        save_checkpoint(self.run_dir / "last.safetensors", self.output, self.meta(metrics, state), tensors)

    def run_epoch(self, epoch: int, net, stop: StopFlag, show_progress: bool) -> None:
        cfg = self.cfg
        tr = self.family.train_one_epoch(net, self.splits.train, self.optimizer, epoch, self.device,
                                         (epoch - 1) * self.steps_per_epoch, self.steps_per_epoch * cfg.epochs,
                                         stop, show_progress and distributed.is_main(), self.ema)
        va = self.family.evaluate(self.output, self.splits.valid, self.device)
        row = {"epoch": epoch, **tr, "valid_loss": va["loss"], "valid_acc": va["acc"],
               "lr": self.optimizer.param_groups[0]["lr"]}
        self.history.append(row)
        # best = highest valid accuracy; a tie (common once valid saturates) goes to the lower loss
        is_best = (va["acc"], -va["loss"]) > self.best
        if is_best:
            self.best = (va["acc"], -va["loss"])
            self.save_best(row)
        self.save_last(epoch, self.tested(row) if epoch == cfg.epochs else row)
        if distributed.is_main():
            write_metrics(self.run_dir, self.history)
        self.log(f"epoch {epoch:>3}/{cfg.epochs}  train loss {tr['train_loss']:.4f} acc {tr['train_acc']:.2%}  "
                 f"valid loss {va['loss']:.4f} acc {va['acc']:.2%}  {tr['seconds']:.1f}s "
                 f"{tr['images_per_s']:,.0f} img/s" + ("  *best" if is_best else ""))

    def finish(self) -> RunResult:
        """After the last epoch: the summary of best and last (both tested when saved), diagnosis, curves."""
        cfg, run_dir = self.cfg, self.run_dir
        last = read_metadata(run_dir / "last.safetensors").metrics
        best = {k: v for k, v in self.best_metrics.items() if k not in self.extra}
        last = {k: v for k, v in last.items() if k not in self.extra}
        diag = diagnose(self.history, test_acc=last.get("test_acc"))
        summary = {"best_epoch": best["epoch"], "best": best, "last": last, "diagnosis": diag, "recipe": cfg.recipe,
                   "valid_from_test": getattr(cfg, "valid_from_test", False), **self.extra}
        write_metrics(run_dir, self.history, summary)
        name = cfg.recipe or f"{cfg.model} ({cfg.dataset})"
        learning_curves(self.history, run_dir / "curves.png", title=name)
        test_txt = f", test {best['test_acc']:.2%}" if "test_acc" in best else ""
        self.log(f"best epoch {best['epoch']}: train {best['train_acc']:.2%}, valid {best['valid_acc']:.2%}{test_txt}")
        self.log(f"diagnosis: {diag['text']}")
        self.log(f"saved {run_dir}/best.safetensors, last.safetensors, metrics.csv, metrics.json, curves.png")
        return RunResult(run_dir, self.history, summary, diag, run_dir / "best.safetensors",
                         run_dir / "last.safetensors")


def _train(config, *, resume, epochs: int | None, log, show_progress: bool) -> RunResult:
    if resume is not None:
        run_dir = Path(resume)
        cfg = resumed_config(run_dir, epochs)
    else:
        cfg = config or TrainConfig()
        run_dir = new_run_dir(cfg)  # said now, not after loading the data
        cfg.out = str(run_dir)

    device = distributed.init(setup(cfg.seed, cfg.device, cfg.threads))  # torchrun: join the group
    run_dir = distributed.broadcast(run_dir)
    log = distributed.main_only(log)
    run = _Run(cfg, run_dir, device, log)
    start_epoch = 1
    if resume is not None and (run_dir / "last.safetensors").exists():  # else killed before its first save
        start_epoch = run.restore(epochs)
    net = distributed.wrap(run.model, device)  # DDP when distributed; `run.output` is what we evaluate and save
    if distributed.is_main():  # only rank 0 writes into the run folder
        write_config(run_dir, cfg)

    log(f"handsign {__version__} | {'resuming' if start_epoch > 1 else 'run'} {run_dir} | device {device} | "
        f"{run.arch['name']}: {count_parameters(run.model):,} parameters")
    log(cfg.describe())
    for line in ([run.threads_note] if run.threads_note else []) + run.family.notes(run.model, device):
        log(line)
    log(f"data: {getattr(cfg, 'dataset', 'photos')} train {len(run.splits.train)}, valid {len(run.splits.valid)}, "
        f"test {len(run.splits.test) if run.splits.test is not None else 0}")
    for note in run.splits.notes:
        log(f"NOTE: {note}")

    if not run.history:
        run.extra = run.family.before_training(run.splits, log)
        run.save_last(0, {})  # resumable from the very start: Ctrl-C in epoch 1 loses nothing but time
    epoch = start_epoch - 1
    if start_epoch > cfg.epochs:
        log(f"NOTE: {run_dir} has already trained {start_epoch - 1} epochs: nothing to train (a larger --epochs "
            f"trains further)")
    with StopFlag() as stop:
        try:
            for epoch in range(start_epoch, cfg.epochs + 1):
                run.run_epoch(epoch, net, stop, show_progress)
        except Stopped:
            raise TrainingInterrupted(stop.signum, run_dir, epoch - 1) from None

    distributed.check_same_weights(run.model, log)
    # rank 0 writes the final metrics; the others wait, then return only the history
    result = run.finish() if distributed.is_main() else RunResult(
        run_dir, run.history, {}, {}, run_dir / "best.safetensors", run_dir / "last.safetensors")
    distributed.barrier()
    return result  # train() leaves the group once this frame (and `net`, the DDP wrapper) is gone
