"""Multi-process training with DistributedDataParallel: joining the group, rank helpers, all-reduce, launch.

    torchrun --nproc-per-node 2 -m handsign train ...      (or: handsign train --nproc 2 ...)
    train_multiprocess(make_config("fast-asl"), nproc=2)   # the same from Python

A process started by torchrun (RANK, WORLD_SIZE, LOCAL_RANK, MASTER_ADDR in its environment) joins the
group in `init`: gloo on CPU, NCCL on CUDA with rank r on cuda:LOCAL_RANK. Any other process is rank 0
of a world of 1 and every helper here is a no-op, so single-process training runs unchanged.
`--batch-size` is per rank (as in torchvision's references): a step sees batch_size * world images.
"""

from __future__ import annotations

import datetime
import gc
import hashlib
import math
import os
import signal
import subprocess
import sys
import traceback
import weakref

import torch
import torch.distributed as dist
from torch.nn.parallel import DistributedDataParallel

from handsign.errors import HandsignError

STOP_CHECK_EVERY = 10  # steps between the all-reduces that agree on a SIGINT/SIGTERM (one int each)
# how long a collective (or joining the group) waits for the other ranks before it raises: gloo's default
# is 30 minutes, so a rank that died without its peers noticing kept them blocked that long; the longest
# legitimate wait is rank 0 alone testing and plotting at the end of a run (seconds). $HANDSIGN_DIST_TIMEOUT
# (seconds) overrides it for a very slow machine.
GROUP_TIMEOUT_S = 300.0
_owned = False  # True when `init` created the process group (so `cleanup` destroys only that one)
_wrappers: "weakref.WeakSet" = weakref.WeakSet()  # the DDP wrappers `wrap` made that are still alive


def launched() -> bool:
    """True in a process started by torchrun (or anything that sets the env:// variables)."""
    return all(k in os.environ for k in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT"))


def active() -> bool:
    return dist.is_available() and dist.is_initialized()


def rank() -> int:
    return dist.get_rank() if active() else 0


def world_size() -> int:
    return dist.get_world_size() if active() else 1


def is_main() -> bool:
    return rank() == 0


def init(device: torch.device) -> torch.device:
    """Join the process group when launched by torchrun; returns this rank's device (cuda -> cuda:LOCAL_RANK).

    `device` is what `runtime.setup` chose from --device; outside torchrun it is returned unchanged."""
    global _owned
    if not launched():
        return device
    local_rank = int(os.environ["LOCAL_RANK"])
    if device.type == "cuda":
        if local_rank >= torch.cuda.device_count():
            raise HandsignError(f"--device {device}: local rank {local_rank} needs GPU {local_rank}, but this "
                                f"machine has {torch.cuda.device_count()} (lower --nproc-per-node)")
        device = torch.device("cuda", local_rank)
        torch.cuda.set_device(device)
        backend = "nccl"
    elif device.type == "cpu":
        backend = "gloo"
    else:
        raise HandsignError(f"--device {device}: distributed training runs on cpu (gloo) or cuda (nccl)")
    if not active():  # a caller that set up its own group keeps it
        dist.init_process_group(backend, device_id=device if backend == "nccl" else None, timeout=group_timeout())
        _owned = True
    barrier()  # nobody writes into the run folder before every rank has checked it
    return device


def group_timeout() -> datetime.timedelta:
    raw = os.environ.get("HANDSIGN_DIST_TIMEOUT", "")
    try:
        seconds = float(raw) if raw else GROUP_TIMEOUT_S
    except ValueError:
        seconds = -1.0
    if not seconds > 0:
        raise HandsignError(f"HANDSIGN_DIST_TIMEOUT: must be a positive number of seconds, not {raw!r}")
    return datetime.timedelta(seconds=seconds)


def cleanup() -> None:
    """Leave the process group that `init` created; safe on every path (success, stop signal, error) and
    idempotent. Call it once nothing refers to the DDP wrapper any more (see `release`): a wrapper that
    still holds the group when it is destroyed is freed later, at interpreter exit, where gloo's
    teardown aborted the process now and then (SIGABRT "terminate called without an active exception"
    after a successful run). gc.collect() first frees wrappers that are only kept by reference cycles."""
    global _owned
    if active() and _owned:
        gc.collect()
        try:
            dist.destroy_process_group()
        finally:
            _owned = False
    _owned = False


def live_wrappers() -> int:
    """How many DDP wrappers made by `wrap` are still alive (0 is what `cleanup` needs)."""
    gc.collect()
    return len(_wrappers)


def release(exc: BaseException | None) -> None:
    """Drop the local variables of the finished frames in `exc`'s traceback (and its causes' and
    contexts'), so what they held (the DDP wrapper) is freed before `cleanup`; the traceback still shows
    every file and line."""
    todo, seen = [exc], set()
    while todo:
        e = todo.pop()
        if e is None or id(e) in seen:
            continue
        seen.add(id(e))
        traceback.clear_frames(e.__traceback__)  # frames still running (the caller's) are skipped
        todo += [e.__cause__, e.__context__]


def barrier() -> None:
    if active():
        dist.barrier()


def _comm_device() -> torch.device:
    """Where collective tensors must live: the rank's GPU for NCCL, else the CPU."""
    if dist.get_backend() == "nccl":
        return torch.device("cuda", torch.cuda.current_device())
    return torch.device("cpu")


def broadcast(obj):
    """Rank 0's `obj` on every rank (e.g. the run folder, whose default name holds a time stamp)."""
    if world_size() == 1:
        return obj
    box = [obj]
    dist.broadcast_object_list(box, src=0, device=_comm_device())
    return box[0]


def main_only(log):
    """`log` on rank 0; a function that prints nothing on the other ranks."""
    return log if is_main() else (lambda *args, **kwargs: None)


def wrap(model: torch.nn.Module, device: torch.device) -> torch.nn.Module:
    """DistributedDataParallel(model) when in a group, else `model`. Train through the wrapper; evaluate
    and save the unwrapped model (its state dict has no 'module.' prefix and its forward no collectives)."""
    if not active():
        return model

    ddp = DistributedDataParallel(model, device_ids=[device.index] if device.type == "cuda" else None)
    _wrappers.add(ddp)
    return ddp


def shard_size(n: int) -> int:
    """Samples per rank per epoch: ceil(n / world), equal on every rank."""
    return math.ceil(n / world_size())


def shard(perm: torch.Tensor) -> torch.Tensor:
    """This rank's share of an epoch order shared by all ranks, as torch's DistributedSampler does it:
    wrap around to a multiple of the world size, then take every world-th index starting at the rank.
    (N,) -> (ceil(N / world),), so all ranks run the same number of steps; at most world - 1 samples
    are seen twice per epoch."""
    world = world_size()
    if world == 1:
        return perm
    total = shard_size(len(perm)) * world
    padded = perm.repeat(math.ceil(total / len(perm)))[:total]
    return padded[rank()::world]


def seed_rank(seed: int, generator: torch.Generator) -> None:
    """After the shared shuffle: this rank's own dropout and augmentation draws, reproducible from
    (seed, rank). World of 1: nothing changes, so the draws equal a single-process run's."""
    if world_size() == 1:
        return
    s = seed * 1_000_003 + rank()
    generator.manual_seed(s)
    torch.manual_seed(s)


def all_reduce_sum(*tensors: torch.Tensor) -> list[torch.Tensor]:
    """Element-wise sums over all ranks (new tensors; the inputs are untouched)."""
    if world_size() == 1:
        return list(tensors)
    out = []
    for t in tensors:
        t = t.detach().clone()
        dist.all_reduce(t, op=dist.ReduceOp.SUM)
        out.append(t)
    return out


def agreed_signal(signum: int, step: int, steps: int) -> int:
    """The stop signal every rank acts on at the same step, so none waits forever in a collective that
    a stopped rank never joins. Single process: `signum`. Distributed: the largest signal number seen
    by any rank, exchanged every STOP_CHECK_EVERY steps and at the last step of the epoch (0 between)."""
    if world_size() == 1:
        return signum
    if (step + 1) % STOP_CHECK_EVERY and step + 1 != steps:
        return 0
    t = torch.tensor([signum], device=_comm_device())
    dist.all_reduce(t, op=dist.ReduceOp.MAX)
    return int(t.item())


def evaluate_sharded(evaluate, model, data, *args) -> dict:
    """`evaluate(model, data, *args)` -> {"loss": mean, "acc": mean}, each rank on every world-th sample
    (no padding: nothing counted twice), then averaged over ranks weighted by share size."""
    world = world_size()
    if world == 1:
        return evaluate(model, data, *args)
    share = data.subset(torch.arange(rank(), len(data), world))
    m = evaluate(model, share, *args) if len(share) else {"loss": 0.0, "acc": 0.0}
    k = len(share)
    (t,) = all_reduce_sum(torch.tensor([m["loss"] * k, m["acc"] * k, k], dtype=torch.float64,
                                       device=_comm_device()))
    return {"loss": (t[0] / t[2]).item(), "acc": (t[1] / t[2]).item()}


def weights_digest(model: torch.nn.Module) -> str:
    """sha256 of the parameters' names and float32 values. Parameters only: BatchNorm running stats
    differ between ranks (DDP broadcasts rank 0's at the start of each forward, then each rank's own
    batch moves them), and the checkpoint keeps rank 0's."""
    h = hashlib.sha256()
    for name, p in model.named_parameters():
        h.update(name.encode())
        h.update(p.detach().float().cpu().contiguous().numpy().tobytes())
    return h.hexdigest()


def check_same_weights(model: torch.nn.Module, log) -> None:
    """After training: every rank must hold the same parameters (DDP's invariant); rank 0 logs the
    digest, any difference raises. Single process: nothing to check."""
    if world_size() == 1:
        return
    digests = [None] * world_size()
    dist.all_gather_object(digests, weights_digest(model))
    if len(set(digests)) != 1:
        raise RuntimeError(f"ranks ended with different weights: {digests}")
    log(f"weights identical on all {world_size()} ranks (parameters sha256 {digests[0]})")


def train_multiprocess(config=None, nproc: int = 2, *, resume=None, epochs: int | None = None,
                       show_progress: bool = True) -> int:
    """Python API of `handsign train --nproc N`: train `config` (a TrainConfig), or continue the stopped run
    in folder `resume` (to `epochs`), with N processes under torchrun. A new run's folder and config.json are
    written here first, and every process reads that file (`train --resume RUN`): the whole config makes the
    trip, model_args too. Returns the exit code: 0 done, 128 + N stopped by signal N, else failed."""
    from handsign.train.run import new_run_dir, write_config  # run imports torch-free config; here at call time

    if resume is None:
        if config is None:
            raise HandsignError("train_multiprocess: give a TrainConfig or a run folder to resume")
        if config.family != "pixels":
            raise HandsignError(f"--nproc: recipe {config.recipe} ({config.family} models) trains in one process")
        if nproc < 1:  # before the run folder is made
            raise HandsignError(f"--nproc: must be a positive integer, got {nproc}")
        resume = new_run_dir(config)
        config.out = str(resume)
        write_config(resume, config)
    argv = ["--resume", str(resume)] + ([] if epochs is None else ["--epochs", str(epochs)])
    return launch(nproc, ["train", *argv, *([] if show_progress else ["--quiet"])])


def launch(nproc: int, argv: list[str]) -> int:
    """`handsign train --nproc N ...`: run `torchrun --standalone --nproc-per-node N -m handsign <argv>`
    (argv without --nproc) and return its exit code. --standalone picks a free port on this machine."""
    if nproc < 1:
        raise HandsignError(f"--nproc: must be a positive integer, got {nproc}")
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc-per-node={nproc}",
           "-m", "handsign", *argv]
    proc = subprocess.Popen(cmd)
    received = []

    def on_signal(signum, frame):
        received.append(signum)
        if signum != signal.SIGINT:  # Ctrl-C reaches torchrun and the workers from the terminal already
            proc.send_signal(signum)  # torchrun passes it on to the workers, which save and stop

    old = {s: signal.signal(s, on_signal) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        rc = proc.wait()
    finally:
        for s, h in old.items():
            signal.signal(s, h)
    return 128 + received[0] if rc and received else rc  # like a single-process run stopped by a signal
