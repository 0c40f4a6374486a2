"""The machine a command runs on: device, seeds, threads (how many, given the cores free now), bf16 support, and a
dependency-free progress bar."""

from __future__ import annotations

import os
import sys
import time

import torch

from handsign.errors import HandsignError
from handsign.models import flops_per_image


def select_device(name: str = "auto") -> torch.device:
    """auto -> cuda if available, else mps, else cpu; an explicit device must exist."""
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if getattr(torch.backends, "mps", None) and torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    try:
        dev = torch.device(name)
    except RuntimeError:
        raise HandsignError(f"--device: unknown device {name!r}; use auto, cpu, cuda, cuda:N or mps") from None
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise HandsignError(f"--device {name}: CUDA is not available on this machine")
    if dev.type == "mps" and not (getattr(torch.backends, "mps", None) and torch.backends.mps.is_available()):
        raise HandsignError(f"--device {name}: MPS is not available on this machine")
    return dev


def setup(seed: int, device: str = "auto", threads: int = 0) -> torch.device:
    """Called once per command: threads, seed, deterministic CPU kernels, device."""
    if threads:
        torch.set_num_threads(threads)
    torch.manual_seed(seed)
    dev = select_device(device)
    if dev.type == "cuda":
        torch.backends.cudnn.benchmark = False
        torch.backends.cudnn.deterministic = True
    return dev


def use_bf16(precision: str, device: torch.device) -> bool:
    """Whether training runs under bfloat16 autocast. "auto": only where the hardware computes bfloat16
    natively (CUDA with bf16, or a CPU with AVX512-BF16 or AMX); elsewhere autocast emulates it and
    trains slower than fp32 (1,183 against 1,890 img/s measured on a CPU without either)."""
    if precision != "auto":
        return precision == "bf16"
    if device.type == "cuda":
        return torch.cuda.is_bf16_supported()
    if device.type == "cpu":  # torch's own CPU feature checks (underscored: absent in some builds -> fp32)
        checks = (getattr(torch.cpu, name, None) for name in ("_is_avx512_bf16_supported", "_is_amx_tile_supported"))
        return any(check() for check in checks if check is not None)
    return False


# Below this much arithmetic per optimizer step (forward + backward) one thread is as fast as two even on
# an idle machine: the step is over before a second thread pays for its start and sync.
# benchmarks/threads.py measured it (benchmarks/results/threads.md): the course MLP at batch 32 is ~0.13
# GFLOP per step, the course CNN at batch 128 ~3.6 GFLOP.
SMALL_STEP_FLOP = 0.5e9


def _cpu_times(cpus) -> tuple[float, float]:
    """(busy, total) jiffies summed over `cpus`, from /proc/stat."""
    busy = total = 0.0
    with open("/proc/stat") as f:
        for line in f:
            name, *vals = line.split()
            if name.startswith("cpu") and name[3:].isdigit() and int(name[3:]) in cpus:
                v = [float(x) for x in vals[:8]]
                total += sum(v)
                busy += sum(v) - v[3] - v[4]  # not idle, not iowait
    return busy, total


def busy_cores(cpus, window: float = 0.25) -> float:
    """Cores of `cpus` kept busy by *other* processes, measured over `window` seconds (Linux: /proc/stat
    minus this process's own CPU time; elsewhere the 1-minute load average, which counts us too)."""
    try:
        own0, (b0, t0) = time.process_time(), _cpu_times(cpus)
        time.sleep(window)
        own1, (b1, t1) = time.process_time(), _cpu_times(cpus)
    except (OSError, ValueError):
        return os.getloadavg()[0] if hasattr(os, "getloadavg") else 0.0
    if t1 <= t0:
        return 0.0
    share = (b1 - b0) / (t1 - t0)  # busy fraction of the allowed cores, all processes
    return max(share * len(cpus) - (own1 - own0) / window, 0.0)


def free_cores() -> tuple[int, int, float]:
    """(cores this process may run on, of them free now, cores busy with other work)."""
    cpus = os.sched_getaffinity(0) if hasattr(os, "sched_getaffinity") else set(range(os.cpu_count() or 1))
    busy = busy_cores(cpus)
    # a core counts as free unless more than ~half of it is taken: a brief blip should not halve the threads
    return len(cpus), max(1, min(len(cpus), round(len(cpus) - busy + 0.2))), busy


def step_flop(model, batch_size: int, example) -> float | None:
    """Forward + backward arithmetic of one optimizer step: 3x the forward (models.flops_per_image)."""
    try:
        with torch.no_grad():
            return 3.0 * flops_per_image(model, example.shape[1], example.shape[-1]) * batch_size
    except Exception:  # a model this cannot run on one example: decide on the free cores alone
        return None


def choose_threads(flop_per_step: float | None) -> tuple[int, str]:
    """Default intra-op threads for CPU training: the free cores, or 1 for a model too small to share."""
    allowed, free, busy = free_cores()
    why = f"{allowed} cores allowed, {busy:.1f} busy with other work"
    if flop_per_step is not None and flop_per_step < SMALL_STEP_FLOP:
        return 1, f"{why}; small step ({flop_per_step / 1e9:.2f} GFLOP): 1 thread"
    return free, f"{why}: {free} free"


def _fmt_time(s: float) -> str:
    s = int(max(s, 0))
    return f"{s // 60}:{s % 60:02d}" if s < 3600 else f"{s // 3600}:{s % 3600 // 60:02d}:{s % 60:02d}"


class Progress:
    """A live bar (batches, loss, images/s, ETA) on a terminal; a plain line every quarter otherwise."""

    def __init__(self, total: int, desc: str, stream=None, enabled: bool = True):
        self.total, self.desc = total, desc
        self.stream = stream or sys.stderr
        self.enabled = enabled
        self.tty = enabled and hasattr(self.stream, "isatty") and self.stream.isatty()
        self.start = self.last_draw = time.perf_counter()
        self.done, self.images, self.next_quarter = 0, 0, 1

    def update(self, images: int, loss: float | None = None):
        self.done += 1
        self.images += images
        if not self.enabled:
            return
        now = time.perf_counter()
        elapsed = max(now - self.start, 1e-9)
        rate = self.images / elapsed
        eta = elapsed / self.done * (self.total - self.done)
        loss_txt = f" loss {loss:.4f}" if loss is not None else ""
        if self.tty:
            if now - self.last_draw < 0.1 and self.done < self.total:
                return
            self.last_draw = now
            width = 24
            filled = int(width * self.done / self.total)
            bar = "#" * filled + "-" * (width - filled)
            self.stream.write(f"\r{self.desc} [{bar}] {self.done}/{self.total}{loss_txt} "
                              f"{rate:,.0f} img/s ETA {_fmt_time(eta)} ")
            if self.done == self.total:
                self.stream.write("\n")
            self.stream.flush()
        elif self.done * 4 >= self.next_quarter * self.total:
            while self.done * 4 >= self.next_quarter * self.total:
                self.next_quarter += 1
            self.stream.write(f"{self.desc} {self.done}/{self.total} batches{loss_txt} "
                              f"{rate:,.0f} img/s ETA {_fmt_time(eta)}\n")
            self.stream.flush()
