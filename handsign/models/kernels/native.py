"""handsign/models/kernels/fused_block.c, compiled on first use with the machine's C compiler and loaded through ctypes.

    lib = native.library()     # a ctypes.CDLL, or None: no compiler or a failed build
    native.status()            # how it was built, or why not, in one line (`handsign train` prints it)

Whether a run uses it is the run config's `kernels` (handsign.models.set_kernels), nothing global.

The C file is plain C99 + OpenMP with no torch headers, so the build takes about a second; the shared
library is cached in <cache>/native/ under a name that hashes the source, the compiler command and the
CPU's feature flags (-march=native), so an edit, another compiler or another CPU builds afresh. The
build compiles into a temporary folder and moves the result in with handsign.files: a killed build
leaves nothing half-written behind.
Nothing here is required: without it handsign.models.kernels.fused runs the same math in torch ops (slower).
"""

from __future__ import annotations

import ctypes
import functools
import hashlib
import os
import platform
import shutil
import subprocess
import tempfile
from pathlib import Path

import torch  # first: torch loads its libgomp.so.1, which the C library then shares (one OpenMP pool)

from handsign.files import atomic_open
from handsign.files import cache_dir

SOURCE = Path(__file__).with_name("fused_block.c")
FLAGS = ["-O3", "-shared", "-fPIC", "-std=c99"]
# tried in order until one builds: a compiler without OpenMP (Apple's clang) or -march=native still gets a
# library (one thread, or generic vector code), and no compiler at all leaves the torch-op path
OPTIONS = (["-march=native", "-fopenmp"], ["-fopenmp"], ["-march=native"], [])

_p, _i, _l, _u64, _u32, _f = (ctypes.c_void_p, ctypes.c_int, ctypes.c_long, ctypes.c_uint64, ctypes.c_uint32,
                              ctypes.c_float)
SIGNATURES = {  # each exists as <name>_f32 and <name>_bf16 (the dtype of y); see fused_block.c
    "channel_stats": [_p, _l, _i, _i, _p, _p],
    "pool_forward": [_p, _i, _i, _i, _i, _p, _p, _p, _u64, _u32, _f, _p, _p],
    "backward_sums": [_p, _i, _i, _i, _i, _p, _p, _p, _f, _p, _p],
    "backward_grad": [_p, _i, _i, _i, _i, _p, _p, _p, _f, _p, _p, _p, _p],
}


def _cpu_flags() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith(("flags", "Features")):
                return line
    except OSError:
        pass
    return platform.processor()


def _build(compiler: str, options: list[str]) -> Path:
    source = SOURCE.read_bytes()
    command = [compiler, *FLAGS, *options]
    key = hashlib.sha256(b"\0".join([source, " ".join(command).encode(), _cpu_flags().encode(),
                                     platform.machine().encode()])).hexdigest()[:16]
    target = cache_dir() / "native" / f"fused_block-{key}.so"
    if target.exists():
        return target
    target.parent.mkdir(parents=True, exist_ok=True, mode=0o700)  # a library others could write is code they run
    with tempfile.TemporaryDirectory() as tmp:  # the compiler's output, then handsign's one atomic write
        built = Path(tmp) / target.name
        done = subprocess.run([*command, str(SOURCE), "-o", str(built)], capture_output=True, text=True,
                              timeout=120)
        if done.returncode:
            raise OSError((done.stderr.strip().splitlines() or ["no output"])[-1])
        with atomic_open(target, mode=0o755) as f:
            f.write(built.read_bytes())
    return target


@functools.cache
def _load() -> tuple[ctypes.CDLL | None, str]:
    """(the library or None, how it was built or why not): built once per process, cached across processes."""
    compiler = os.environ.get("CC") or shutil.which("cc") or shutil.which("gcc") or shutil.which("clang")
    if not compiler:
        return None, "no C compiler (cc, gcc, clang or $CC) on PATH"
    errors = []
    for options in OPTIONS:
        try:
            lib = ctypes.CDLL(str(_build(compiler, options)))
            for name, args in SIGNATURES.items():
                for suffix in ("_f32", "_bf16"):
                    fn = getattr(lib, name + suffix)
                    fn.argtypes, fn.restype = args, None
        except (OSError, subprocess.SubprocessError, AttributeError) as e:
            errors.append(str(e))
            continue
        return lib, f"built with {compiler} {' '.join(options)}".rstrip()
    return None, f"build failed: {errors[0]}"


def library() -> ctypes.CDLL | None:
    """The compiled kernels, or None (status() says why)."""
    return _load()[0]


def status() -> str:
    return _load()[1]


def kernel(name: str, dtype: torch.dtype):
    """The C function `name` for tensors of `dtype` (float32 or bfloat16)."""
    return getattr(library(), name + ("_bf16" if dtype == torch.bfloat16 else "_f32"))


def check(t: torch.Tensor, shape: tuple, dtypes: tuple, channels_last: bool = False) -> torch.Tensor:
    """`t` as the C code will read it through a raw pointer: on the CPU, of `shape` and one of `dtypes`, dense in
    its layout (NCHW channels-last for a 4-D (B, C, H, W) image tensor, else row-major). A tensor that is not
    raises ValueError: a wrong stride or size would be read out of bounds, not caught."""
    layout = torch.channels_last if channels_last else torch.contiguous_format
    if (t.device.type != "cpu" or tuple(t.shape) != tuple(shape) or t.dtype not in dtypes
            or not t.is_contiguous(memory_format=layout)):
        raise ValueError(f"fused_block.c: expected a {'channels-last ' if channels_last else ''}dense CPU tensor "
                         f"{tuple(shape)} of {'/'.join(map(str, dtypes))}, got {tuple(t.shape)} {t.dtype} on "
                         f"{t.device} with strides {t.stride()}")
    return t


def ptr(t: torch.Tensor | None) -> int | None:
    return None if t is None else t.data_ptr()
