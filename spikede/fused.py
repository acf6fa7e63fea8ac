r"""The compiled engine: a fractional LIF layer's time loop in blocks of steps.

A multi-step `FractionalLIF`/`FractionalIF` call spends most of its time on per-step Python and
small tensor operations, not on arithmetic.  Here the sequential part of `b` steps -- the near
history (lags inside the block), the scheme's update, the spike and the reset, and backwards the
discrete adjoint's reverse sweep -- is one call into a small C kernel (`csrc/lif_blocks.c`),
while the far history of the block stays one matrix product:

$$
H_n = \sum_{j=n-n_0+1}^{n} W_j u_{n-j} + \sum_{j=1}^{n-n_0} W_j u_{n-j}, \qquad n_0 \le n < n_0 + b,
$$

where the first sum (the rows before the block) is one product for all `b` steps, and the second
(the rows inside the block) runs in the kernel.  With `memory='soe'` the first sum comes from the
blocked sum-of-exponentials kernel (`BlockedSOEKernel.block_history`) instead.

The kernel is compiled once with the system's C compiler (environment variable `CC`, else `cc`) on first use and
cached in the folder `SPIKEDE_CACHE_DIR` names (default `~/.cache/spikede`), keyed by the source, the flags
and the CPU.  Which engine runs:

- `SPIKEDE_ENGINE=auto` (default) or `set_engine('auto')`: the compiled kernel where it applies
  (multi-step calls of `FractionalLIF`/`FractionalIF` on CPU tensors, float32 or float64, any
  memory kernel, through the discrete adjoint or without a graph); the eager loop elsewhere
  (CUDA, float16/bfloat16, single steps, plain autograd with `adjoint=False`, a random spike).
  If the kernel cannot be built, one `EngineWarning` says why and the eager loop is used.
- `'compiled'`: as `auto`, but a failed build raises.
- `'eager'`: never the compiled kernel.

Both engines compute the same sums in a different order, so they agree to rounding: the tests
hold spikes identical, states and gradients to 1e-12 (float64) and input gradients to 1e-5
(float32), relative.  Float32 parameter gradients, sums over every step and neuron, the kernel adds
in float64 and the eager loop in float32; both are held to the float64 gradient at 1e-4.

The kernel runs on one thread (the far products take the threads, `block_threads`); a layer of
more than 2^18 neurons per step, which the eager loop would spread over threads, is still served
by it.
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

from .solvers.engine import block_threads
from .solvers.memory import make_kernel

__all__ = ["EngineWarning", "set_engine", "engine_status", "compiled_kernels"]

ENGINES = ("auto", "compiled", "eager")
BLOCK = 32  # steps per kernel call: the near history costs b/2 lags per step, the far product b rows per read
_RESETS = {"subtract": 0, "zero": 1, "none": 2}
_FLAGS = ["-O3", "-fPIC", "-shared", "-std=gnu99"]
_NATIVE = "-march=native"  # tried first; a compiler that rejects it builds without it
_SOURCE = Path(__file__).with_name("csrc") / "lif_blocks.c"


class EngineWarning(UserWarning):
    """The compiled engine could not be built; the eager loop runs instead."""


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
    """Which engine is chosen, whether the compiled kernel is loaded, and why not if it failed."""
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
    target = _cache_dir() / f"lif_blocks-{key}.so"
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
    signatures = {  # (sizes, pointers, doubles, ints)
        "lif_forward": (3, 8, 5, 3),
        "lif_rebuild_l1": (2, 3, 0, 0),
        "lif_unpack": (3, 4, 1, 1),
        "lif_backward": (3, 11, 6, 4),
    }
    for name, (sizes, pointers, doubles, ints) in signatures.items():
        for suffix in ("f32", "f64"):
            function = getattr(library, f"{name}_{suffix}")  # getattr caches; library[...] makes a new one
            function.argtypes = [ctypes.c_long] * sizes + [ctypes.c_void_p] * pointers + [ctypes.c_double] * doubles + \
                [ctypes.c_int] * ints
            function.restype = None
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
            warnings.warn(f"spikede runs its eager engine: the compiled kernel could not be built ({error}). "
                          "Install a C compiler (or set CC), or set SPIKEDE_ENGINE=eager to silence this.",
                          EngineWarning, stacklevel=3)
    return _library


def applies(neuron, x: torch.Tensor) -> bool:
    """Whether a multi-step call of `neuron` on `x` can run compiled (and the kernel is there)."""
    random_spike = neuron.surrogate.spec.stochastic and neuron.surrogate.training
    return (x.device.type == "cpu" and x.dtype in (torch.float32, torch.float64)
            and neuron.method in ("gl", "l1") and not random_spike and compiled_kernels() is not None)


def _ptr(tensor: torch.Tensor | None):
    """The address of `tensor`'s first element; the caller keeps `tensor` alive during the call."""
    return None if tensor is None else ctypes.c_void_p(tensor.data_ptr())


def _kernel(name: str, dtype: torch.dtype):
    return getattr(_library, f"{name}_{'f64' if dtype == torch.float64 else 'f32'}")


class _FullHistory:
    """Far sums over the stored rows themselves: one product of a Toeplitz block of the weights
    (zero beyond a window) with the rows before the block."""

    def __init__(self, weights: torch.Tensor, window: int | None):
        self.window = window
        if window is not None and window < weights.numel() - 1:
            weights = weights * (torch.arange(weights.numel(), device=weights.device) <= window).to(weights.dtype)
        self.near_weights = weights.contiguous()
        self._flipped = weights.flip(0).contiguous()  # W_{L-l} at l: Toeplitz blocks as strided views

    def start(self, template: torch.Tensor) -> None:
        """Ready for a sweep over rows like `template` (the first row, `u_0` or the zero before `G_T`)."""

    def forward_far(self, rows: torch.Tensor, n0: int, b: int) -> tuple[torch.Tensor, int]:
        """The far sums of steps `n0 .. n0+b-1` and the row step (`-1`: rows in reverse step order)."""
        lo = 0 if self.window is None else max(0, n0 - self.window)
        lags = self._flipped.numel() - 1  # entry (k', r) of the view: W_{n0+b-1-k'-r}, row lo + r, step n0+b-1-k'
        toeplitz = self._flipped.as_strided((b, n0 - lo), (1, 1), lags - n0 - b + 1 + lo)
        with block_threads(b * (n0 - lo) * rows.shape[1]):
            return toeplitz @ rows[lo:n0], -1

    def forward_rows(self, rows: torch.Tensor) -> None:
        """The rows the kernel just wrote (kept in place: nothing to do)."""

    def backward_far(self, g: torch.Tensor, top: int, b: int) -> tuple[torch.Tensor, int]:
        """`sum_j W_j G_{n+j}` over the gradients after the block, for `n = top - b + 1 .. top`."""
        steps = g.shape[0]
        hi = steps if self.window is None else min(steps, top + self.window)
        if hi <= top:
            return g.new_zeros(b, g.shape[1]), 1
        toeplitz = self.near_weights.as_strided((b, hi - top), (1, 1), 1)  # entry (q', r): W_{1+q'+r}, step top - q'
        with block_threads(b * (hi - top) * g.shape[1]):
            return toeplitz @ g[top:hi], -1

    def backward_rows(self, g_block: torch.Tensor) -> None:
        """The gradients the kernel just wrote (kept in place: nothing to do)."""


class _SOEHistory:
    """Far sums from a blocked sum-of-exponentials kernel (`BlockedSOEKernel`): its modes and
    exact rows give everything before the block; the block's own lags use its `near_weights`."""

    def __init__(self, make):
        self._make = make  # template -> a fresh BlockedSOEKernel
        self._kernel = None
        self._steps = 0

    def start(self, template: torch.Tensor) -> None:
        self._kernel = self._make(template)
        self.near_weights = self._kernel.near_weights[0].contiguous()
        self._kernel.append_block(template[None])
        self._steps = self._kernel.n_steps

    def forward_far(self, rows, n0, b):
        return self._kernel.block_history(n0, b)[0], 1

    def forward_rows(self, rows: torch.Tensor) -> None:
        self._kernel.append_block(rows)

    def backward_far(self, g, top, b):  # the kernel runs over G_T, G_{T-1}, ...: its block is reversed
        return self._kernel.block_history(self._steps + 1 - top, b)[0], -1

    def backward_rows(self, g_block: torch.Tensor) -> None:
        self._kernel.append_block(g_block.flip(0))


def history_for(neuron, scheme, steps: int):
    """The far history of `neuron`'s memory kernel: the rows themselves (`None`, a window, or
    `'soe'` over fewer steps than its exact lags) or the blocked sum of exponentials."""
    if neuron.memory != "soe" or steps < neuron._kernel_options()["soe_first_lag"]:
        return _FullHistory(scheme.weights.detach()[0], neuron.memory if isinstance(neuron.memory, int) else None)
    options = {**neuron._kernel_options(), "block": BLOCK}

    def make(template):
        return make_kernel(scheme, steps, template, "soe", differentiable=False, **options)

    return _SOEHistory(make)


def _ptr_row(tensor: torch.Tensor, step: int, b: int):
    """The row of the block's first step in a far buffer whose rows run with `step` (+1 or -1)."""
    return _ptr(tensor[0] if step > 0 else tensor[b - 1])


class Recurrence:
    """One layer's constants for the kernels: the far history (`_FullHistory` or `_SOEHistory`),
    the step coefficient `c`, `tau`, `theta` and the neuron's scheme and event settings."""

    def __init__(self, neuron, history, step_coef: float, tau: float, theta: float):
        self.neuron = neuron
        self.history = history
        self.c, self.tau, self.theta = float(step_coef), float(tau), float(theta)
        self.l1 = int(neuron.method == "l1")
        self.leak = int(neuron.leak)
        self.reset = _RESETS[neuron.events.reset]

    def forward(self, x: torch.Tensor, keep_proposed: bool, keep_membrane: bool):
        """Run the layer over `x` `[T, m]`: rows `u_0 .. u_T` `[T + 1, m]`, spikes `[T, m]`, the last
        potential `[m]`, and the proposed and post-reset potentials where asked (else `None`)."""
        steps, m = x.shape
        nrn, history = self.neuron, self.history
        rows = x.new_empty(steps + 1, m)
        rows[0] = 0.0  # u_0 = 0 for gl and l1
        history.start(rows[0])
        spikes = torch.empty_like(x)
        proposed = torch.empty_like(x) if keep_proposed else None
        membrane = torch.empty_like(x) if keep_membrane else None
        v = torch.full((m,), float(nrn.v_rest), dtype=x.dtype, device=x.device)
        run = _kernel("lif_forward", x.dtype)
        for n0 in range(1, steps + 1, BLOCK):
            b = min(BLOCK, steps + 1 - n0)
            far, step = history.forward_far(rows, n0, b)
            first = n0 - 1
            run(b, m, step * m, _ptr_row(far, step, b), _ptr(x[first:first + b]), _ptr(history.near_weights),
                _ptr(rows[n0]), _ptr(v), _ptr(spikes[first]), _ptr(None if proposed is None else proposed[first]),
                _ptr(None if membrane is None else membrane[first]),
                self.c, self.tau, self.theta, float(nrn.v_rest), float(nrn.events.v_reset),
                self.leak, self.l1, self.reset)
            history.forward_rows(rows[n0:n0 + b])
        return rows, spikes, v, proposed, membrane

    def backward(self, rows, bits, proposed, v_last, x, grad_spikes, to_history: float):
        """The reverse sweep: the input gradients `[T, m]` and the sums (float64, per neuron first)
        `(g_theta, sum g_f drive, sum g_p drive)`.  `bits`: the spikes, eight to a byte (`SpikeBits`)."""
        steps, m = grad_spikes.shape
        nrn, history = self.neuron, self.history
        dtype = rows.dtype
        g = rows.new_empty(steps, m)
        carry = rows.new_zeros(m)
        history.start(torch.zeros_like(carry))
        partials = torch.zeros(3, m, dtype=torch.float64, device=rows.device)
        sweep, rebuild, unpack = (_kernel(name, dtype) for name in ("lif_backward", "lif_rebuild_l1", "lif_unpack"))
        surrogate = nrn.surrogate
        theta, v_rest = self.theta, float(nrn.v_rest)
        v_top = v_last.contiguous()
        # Every buffer handed to the kernels is held by a name while it runs: a pointer into a
        # temporary (`_ptr(t.contiguous())`) may point at freed memory.  An expanded gradient
        # (from `spikes.sum()`) becomes one contiguous tensor here.
        grad_spikes = grad_spikes.contiguous()
        if x is not None:
            x = x.contiguous()
        for top in range(steps, 0, -BLOCK):
            bottom = max(1, top - BLOCK + 1)
            b = top - bottom + 1
            far, step = history.backward_far(g, top, b)
            if self.l1:  # potentials v_{bottom-1} .. v_top
                potentials = rows.new_empty(b + 1, m)
                rebuild(b, m, _ptr(rows[bottom:top + 1]), _ptr(v_top), _ptr(potentials))
            else:
                potentials = rows[bottom - 1:top + 1] + v_rest
                potentials[-1] = v_top  # the kept state itself, as the eager sweep starts from it
            s = rows.new_empty(b, m)
            p = proposed[bottom - 1:top] if self.reset == _RESETS["zero"] else rows.new_empty(b, m)
            unpack(b, m, bits.shape[1], _ptr(bits[bottom - 1]), _ptr(potentials[1:]), _ptr(s),
                   _ptr(None if self.reset == _RESETS["zero"] else p), theta, self.reset)
            bump = surrogate.derivative(p - theta).contiguous()
            previous = potentials[:-1] if x is not None else None
            sweep(b, m, step * m, _ptr_row(far, step, b), _ptr(history.near_weights), _ptr(g[bottom - 1]),
                  _ptr(s), _ptr(p), _ptr(bump),
                  _ptr(grad_spikes[bottom - 1:top]), _ptr(None if x is None else x[bottom - 1:top]),
                  _ptr(previous), _ptr(carry), _ptr(partials),
                  self.c, self.tau, theta, v_rest, float(nrn.events.v_reset), float(to_history),
                  self.leak, self.l1, self.reset, int(nrn.events.detach_reset))
            history.backward_rows(g[bottom - 1:top])
            v_top = potentials[0].contiguous()
        return g, tuple(partials.sum(1).tolist())
