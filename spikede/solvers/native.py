"""The compiled kernels (`spikede/csrc`): built with the system's C compiler, cached, loaded.

The kernels are compiled once with the compiler that the environment variable `CC` names (else
`cc`) on first use and cached in the folder `SPIKEDE_CACHE_DIR` names (default
`~/.cache/spikede`), keyed by the source, the flags and the CPU.  Which engine runs:

- `SPIKEDE_ENGINE=auto` (default) or `set_engine('auto')`: the compiled kernels where they apply
  (see `spikede.fused` for the layers and `spikede.solvers.blocks` for `fdeint`), the eager loop
  elsewhere.  If the kernels cannot be built, one `EngineWarning` says why and the eager loop is used.
- `'compiled'`: as `auto`, but a failed build raises.
- `'eager'`: never the compiled kernels.
"""

from __future__ import annotations

import ctypes
import hashlib
import os
import platform
import shutil
import subprocess
import tempfile
import warnings
from pathlib import Path

import torch

__all__ = ["EngineWarning", "set_engine", "engine_status", "compiled_kernels"]

ENGINES = ("auto", "compiled", "eager")
_FLAGS = ["-O3", "-fno-trapping-math", "-fPIC", "-shared", "-std=gnu99"]  # no trap handlers: selects vectorise
_NATIVE = "-march=native"  # tried first; a compiler that rejects it builds without it
_SOURCE = Path(__file__).parent.parent / "csrc" / "kernels.c"
_SIGNATURES = {  # name: (sizes, pointers, doubles, ints); fde_step returns an int
    "lif_forward": (3, 9, 5, 3),
    "lif_proposed": (3, 5, 2, 2),
    "lif_backward": (4, 12, 7, 5),
    "fde_step": (2, 6, 1, 0),
}


class EngineWarning(UserWarning):
    """The compiled kernels could not be built; the eager loop runs instead."""


def _check_engine(name: object, what: str = "engine") -> str:
    if name not in ENGINES:
        raise ValueError(f"{what} must be one of {', '.join(map(repr, ENGINES))}, got {name!r}")
    return name  # type: ignore[return-value]


def _engine_from_env() -> str:
    return _check_engine(os.environ.get("SPIKEDE_ENGINE", "auto").strip().lower() or "auto", "SPIKEDE_ENGINE")


_engine: str | None = None
_library: ctypes.CDLL | None = None
_failure: str | None = None


def set_engine(name: str) -> None:
    """Choose the engine for later calls: `'auto'`, `'compiled'` or `'eager'` (see the module)."""
    global _engine
    _engine = _check_engine(name)


def engine_status() -> dict:
    """Which engine is chosen, whether the compiled kernels are loaded, and why not if the build failed."""
    return {"engine": _engine or _engine_from_env(), "compiled_loaded": _library is not None, "build_error": _failure}


def _cpu_tag() -> str:
    try:
        with open("/proc/cpuinfo") as info:
            flags = next((line for line in info if line.startswith(("flags", "Features"))), "")
    except OSError:
        flags = ""
    return f"{platform.machine()} {platform.processor()} {flags}"


def _cache_dir() -> Path:
    configured = os.environ.get("SPIKEDE_CACHE_DIR")
    if configured:
        return Path(configured)
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "spikede"


def _build() -> ctypes.CDLL:
    """Compile (or find in the cache) and load the kernel library; raises `RuntimeError` on failure."""
    source = b"".join(path.read_bytes() for path in sorted(_SOURCE.parent.glob("*.[ch]")))
    compiler = os.environ.get("CC", "cc")
    key = hashlib.sha256(source + " ".join([compiler, *_FLAGS, _NATIVE, _cpu_tag()]).encode()).hexdigest()[:16]
    target = _cache_dir() / f"kernels-{key}.so"
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
    except OSError:  # e.g. a read-only home: a private folder under the system's temporary one
        user = os.getuid() if hasattr(os, "getuid") else 0
        target = Path(tempfile.gettempdir()) / f"spikede-{user}" / target.name
        target.parent.mkdir(parents=True, exist_ok=True)
    if not target.exists():
        if shutil.which(compiler) is None:
            raise RuntimeError(f"no C compiler: {compiler!r} is not on PATH (set CC to one)")
        with tempfile.TemporaryDirectory(dir=target.parent) as scratch:
            built = Path(scratch) / target.name
            for flags in ([*_FLAGS, _NATIVE], _FLAGS):
                result = subprocess.run([compiler, *flags, str(_SOURCE), "-o", str(built), "-lm"],
                                        capture_output=True, text=True)
                if result.returncode == 0:
                    break
            if result.returncode != 0:
                raise RuntimeError(f"{compiler} failed to build {_SOURCE.name}: {result.stderr.strip()[:500]}")
            os.replace(built, target)  # atomic: concurrent processes see a whole library or none
    library = ctypes.CDLL(str(target))
    for name, (sizes, pointers, doubles, ints) in _SIGNATURES.items():
        for suffix in ("f32", "f64"):
            function = getattr(library, f"{name}_{suffix}")  # getattr caches; library[...] makes a new one
            function.argtypes = [ctypes.c_long] * sizes + [ctypes.c_void_p] * pointers + [ctypes.c_double] * doubles + \
                [ctypes.c_int] * ints
            function.restype = ctypes.c_int if name == "fde_step" else None
    return library


def compiled_kernels() -> ctypes.CDLL | None:
    """The loaded kernel library, or `None` when the eager engine is to run (chosen, or the build
    failed under `'auto'`, with one `EngineWarning`)."""
    global _library, _failure
    engine = _engine or _engine_from_env()
    if engine == "eager":
        return None
    if _library is None and (_failure is None or engine == "compiled"):
        try:
            _library = _build()
            _failure = None
        except (OSError, RuntimeError) as error:
            _failure = str(error)
            if engine == "compiled":
                raise RuntimeError(f"the compiled engine was asked for (engine='compiled') but: {error}") from error
            warnings.warn(f"spikede runs its eager engine: the compiled kernels could not be built ({error}). "
                          "Install a C compiler (or set CC), or set SPIKEDE_ENGINE=eager to silence this.",
                          EngineWarning, stacklevel=3)
    return _library


def ptr(tensor: torch.Tensor | None):
    """The address of `tensor`'s first element; the caller keeps `tensor` alive during the call."""
    return None if tensor is None else ctypes.c_void_p(tensor.data_ptr())


def kernel(name: str, dtype: torch.dtype):
    """The loaded kernel `name` for float32 or float64 data."""
    return getattr(_library, f"{name}_{'f64' if dtype == torch.float64 else 'f32'}")
