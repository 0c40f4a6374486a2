"""handsign/fused_block.c, compiled on first use with the machine's C compiler and loaded through ctypes.

    lib = native.library()     # a ctypes.CDLL, or None: no compiler, a failed build, or HANDSIGN_NATIVE=0
    native.status()            # how it was built, or why not, in one line (`handsign train` prints it)

The C file is plain C99 + OpenMP with no torch headers, so the build takes about a second; the shared
library is cached in <cache>/native/ under a name that hashes the source, the compiler command and the
CPU's feature flags (-march=native), so an edit, another compiler or another CPU builds afresh. The
build compiles into a temporary folder and moves the result in with handsign.atomic: a killed build
leaves nothing half-written behind.
Nothing here is required: without it handsign.fused runs the same math in torch ops (slower).
"""

from __future__ import annotations

import ctypes
import hashlib
import os
import platform
import shutil
import subprocess
import tempfile
from pathlib import Path

import torch  # first: torch loads its libgomp.so.1, which the C library then shares (one OpenMP pool)

from handsign.atomic import atomic_open
from handsign.data import cache_dir

SOURCE = Path(__file__).with_name("fused_block.c")
FLAGS = ["-O3", "-shared", "-fPIC", "-std=c99"]
# tried in order until one builds: a compiler without OpenMP (Apple's clang) or -march=native still gets a
# library (one thread, or generic vector code), and no compiler at all leaves the torch-op path
OPTIONS = (["-march=native", "-fopenmp"], ["-fopenmp"], ["-march=native"], [])

_lib: ctypes.CDLL | None = None
_status = "not built yet"
_tried = False

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


def library() -> ctypes.CDLL | None:
    """The compiled kernels (built once per process, cached across processes), or None."""
    global _lib, _status, _tried
    if _tried:
        return _lib
    _tried = True
    if os.environ.get("HANDSIGN_NATIVE", "1") == "0":
        _status = "off: HANDSIGN_NATIVE=0"
        return None
    compiler = os.environ.get("CC") or shutil.which("cc") or shutil.which("gcc") or shutil.which("clang")
    if not compiler:
        _status = "no C compiler (cc, gcc, clang or $CC) on PATH"
        return None
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
        _lib, _status = lib, f"built with {compiler} {' '.join(options)}".rstrip()
        return _lib
    _status = f"build failed: {errors[0]}"
    return None


def status() -> str:
    library()
    return _status


def kernel(name: str, dtype: torch.dtype):
    """The C function `name` for tensors of `dtype` (float32 or bfloat16)."""
    return getattr(_lib, name + ("_bf16" if dtype == torch.bfloat16 else "_f32"))


def ptr(t: torch.Tensor | None) -> int | None:
    return None if t is None else t.data_ptr()
