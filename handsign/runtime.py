"""Per-command setup (device, threads, seeds) and a dependency-free progress bar."""

from __future__ import annotations

import sys
import time

import torch

from handsign.errors import HandsignError


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
