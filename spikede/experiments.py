"""The solver-accuracy experiment behind `spikede convergence`.

For every method (explicit and implicit variants) and order alpha, solve three
test problems on `[0, 1]` with `N = n0, 2 n0, ..., 2^halvings n0` steps and
record the error and the observed order `log2(e(h) / e(h/2))`:

* `smooth`: `D^a y = Gamma(4)/Gamma(4-a) t^(3-a) + t^3 - y`, `y(0) = 0`, exact
  `y = t^3`.  Theory (each scheme's `order`): `gl`, `pred`, explicit `l1`: 1; implicit
  `l1`: `2 - a`; `trap`: `min(2, 1 + a)` (PECE), 2 (implicit); `flmm-*`: 2.
* `nonlinear`: Diethelm, Ford & Freed's `y = t^8 - 3 t^(4+a/2) + 9/4 t^a`
  (`spikede.special.diethelm_problem`).
* `relaxation`: `D^a y = -y`, `y(0) = 1`, exact `E_a(-t^a)`.

Orders `1 < a <= 2` run the methods that take them (`SCHEMES[name].max_alpha`) with the
second initial value `y'(0) = 0`, which all three solutions have for such `a`.

The error of `smooth` is the maximum over the grid.  The last two solutions behave like
`t^a` near 0, where every method loses accuracy (the maximum over `[0, 1]` then converges at
a rate near `a` or erratically, as the place of the largest error moves); away from 0 the
classical orders return (`trap`: about `1 + a`).  Their error is therefore the maximum over
`[1/2, 1]`.  It used to be the error at `t = 1` alone, but at one point the leading error
terms can cancel: for `trap` at `a = 0.7` the error at `t = 1` changes sign between N = 128
and 256 (+3.3e-6, then -3.1e-6), which made the pairwise orders jump 1.21, 2.36, 4.07, 0.10,
0.59.  Each line of the summary also gives the least-squares slope of `log e` against
`log h` over the three finest grids (`fit`).
"""

from __future__ import annotations

import csv
import math
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch

from .solvers import SCHEMES, fdeint
from .special import diethelm_problem, relaxation

__all__ = ["Variant", "VARIANTS", "PROBLEMS", "ConvergenceRow", "convergence_study", "fitted_order", "write_report"]


@dataclass(frozen=True)
class Variant:
    """A method of `fdeint` with its options; its theoretical order is the scheme's own."""

    label: str
    method: str
    implicit: bool

    def theory(self, alpha: float) -> float:
        """Order on a smooth solution (the `smooth` problem): `SCHEMES[method].order`."""
        return SCHEMES[self.method].order(alpha, self.implicit)


VARIANTS = tuple(
    Variant(name + ("-implicit" if implicit and len(cls.implicit_modes) > 1 else ""), name, implicit)
    for name, cls in SCHEMES.items()
    for implicit in cls.implicit_modes
)


def _smooth(alpha: float):
    c = math.gamma(4.0) / math.gamma(4.0 - alpha)
    return (lambda t, y: c * t ** (3.0 - alpha) + t**3 - y), 0.0, (lambda t: t**3), 0.0


def _nonlinear(alpha: float):
    func, exact = diethelm_problem(alpha)
    return func, 0.0, exact, 0.5


def _relaxation(alpha: float):
    return (lambda t, y: -y), 1.0, (lambda t: relaxation(t, alpha)), 0.5


PROBLEMS = {"smooth": _smooth, "nonlinear": _nonlinear, "relaxation": _relaxation}


@dataclass(frozen=True)
class ConvergenceRow:
    problem: str
    method: str
    alpha: float
    n: int
    h: float
    error: float
    order: float  # log2(e(2h) / e(h)); NaN on the coarsest grid
    theory: float  # NaN where the problem's solution is not smooth


def convergence_study(
    alphas=(0.3, 0.5, 0.7, 0.9),
    variants=VARIANTS,
    problems=tuple(PROBLEMS),
    n0: int = 16,
    halvings: int = 5,
) -> list[ConvergenceRow]:
    """Run every (problem, variant, alpha) on `halvings + 1` grids; return one row per grid."""
    rows = []
    for problem in problems:
        for variant in variants:
            for alpha in alphas:
                if alpha > SCHEMES[variant.method].max_alpha:
                    continue
                func, y0_value, exact, t_from = PROBLEMS[problem](alpha)
                previous = None
                for k in range(halvings + 1):
                    n = n0 * 2**k
                    t = torch.linspace(0.0, 1.0, n + 1, dtype=torch.float64)
                    y0 = torch.full((1,), y0_value, dtype=torch.float64)
                    if alpha > 1.0:
                        y0 = (y0, torch.zeros_like(y0))  # y'(0) = 0
                    with torch.no_grad():
                        y = fdeint(func, y0, t, alpha, method=variant.method, implicit=variant.implicit)[:, 0]
                    error = (y - exact(t)).abs()[t >= t_from].max().item()
                    order = math.log2(previous / error) if previous else math.nan
                    theory = variant.theory(alpha) if problem == "smooth" else math.nan
                    rows.append(ConvergenceRow(problem, variant.label, alpha, n, 1.0 / n, error, order, theory))
                    previous = error
    return rows


def _fmt(x: float, spec: str) -> str:
    return "" if math.isnan(x) else format(x, spec)


def fitted_order(rows: list[ConvergenceRow], last: int = 3) -> float:
    """Least-squares slope of `log(error)` against `log(h)` over the `last` finest grids of one group."""
    kept = [r for r in rows[-last:] if r.error > 0]
    if len(kept) < 2:
        return math.nan
    return float(np.polyfit(np.log([r.h for r in kept]), np.log([r.error for r in kept]), 1)[0])


def _groups(rows: list[ConvergenceRow]) -> dict[tuple, list[ConvergenceRow]]:
    groups: dict[tuple, list[ConvergenceRow]] = {}
    for r in rows:
        groups.setdefault((r.problem, r.method, r.alpha), []).append(r)
    return groups


def summary_lines(rows: list[ConvergenceRow]) -> list[str]:
    """One line per (problem, method, alpha): coarsest and finest error, observed orders, fitted order, theory."""
    lines = [f"{'problem':<11}{'method':<15}{'alpha':>6}{'e(h0)':>11}{'e(hmin)':>11}  "
             f"{'observed orders (h0 -> hmin)':<34}{'fit':>6}{'theory':>8}"]
    for (problem, method, alpha), rs in _groups(rows).items():
        orders = " ".join(f"{r.order:5.2f}" for r in rs[1:])
        lines.append(
            f"{problem:<11}{method:<15}{alpha:>6.2f}{rs[0].error:>11.2e}{rs[-1].error:>11.2e}  {orders:<34}"
            f"{_fmt(fitted_order(rs), '6.2f'):>6}{_fmt(rs[-1].theory, '.2f'):>8}"
        )
    return lines


def write_report(rows: list[ConvergenceRow], out_dir: str | Path) -> dict[str, Path]:
    """Write `convergence.csv`, `convergence.md` and `convergence.png` into `out_dir`."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = {"csv": out / "convergence.csv", "md": out / "convergence.md", "png": out / "convergence.png"}
    fields = list(asdict(rows[0]))
    with open(paths["csv"], "w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=fields)
        writer.writeheader()
        writer.writerows(asdict(r) for r in rows)
    with open(paths["md"], "w") as fh:
        fh.write("| problem | method | alpha | N | h | error | observed order | theory |\n")
        fh.write("|---|---|---|---|---|---|---|---|\n")
        for r in rows:
            fh.write(
                f"| {r.problem} | {r.method} | {r.alpha:g} | {r.n} | {r.h:.3e} | {r.error:.3e} | "
                f"{_fmt(r.order, '.3f')} | {_fmt(r.theory, '.2f')} |\n"
            )
    _plot(rows, paths["png"])
    return paths


def _plot(rows: list[ConvergenceRow], path: Path) -> None:
    import matplotlib
    import matplotlib.ticker

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    problems = list(dict.fromkeys(r.problem for r in rows))
    alphas = list(dict.fromkeys(r.alpha for r in rows))
    methods = list(dict.fromkeys(r.method for r in rows))
    fig, axes = plt.subplots(
        len(problems), len(alphas), figsize=(4.2 * len(alphas), 3.6 * len(problems)), squeeze=False, sharex=True
    )
    ns = sorted({r.n for r in rows})
    h = [1.0 / n for n in ns]
    colors = plt.get_cmap("tab20")
    for i, problem in enumerate(problems):
        for j, alpha in enumerate(alphas):
            ax = axes[i][j]
            lowest = math.inf
            for index, method in enumerate(methods):
                sel = [r for r in rows if r.problem == problem and r.alpha == alpha and r.method == method]
                ax.loglog([r.h for r in sel], [r.error for r in sel], "o-", ms=3, label=method,
                          color=colors(index % 20))  # one colour per method (the default cycle has 10)
                lowest = min([lowest] + [r.error for r in sel if r.error > 0])
            for order, style in ((1, ":"), (2, "--")):  # reference slopes through the smallest error
                ax.loglog(h, [lowest * (x / h[-1]) ** order for x in h], style, color="0.4", lw=1,
                          label=f"slope {order}")
            ax.xaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())
            ax.set_xticks([1.0 / n for n in ns[::2]], [f"1/{n}" for n in ns[::2]])
            ax.set_title(f"{problem}, alpha = {alpha:g}", fontsize=10)
            ax.grid(True, which="both", alpha=0.3)
            ax.legend(fontsize=6, loc="upper left", ncol=2)  # small h, large error: empty
            if i == len(problems) - 1:
                ax.set_xlabel("step size h")
            if j == 0:
                ax.set_ylabel("max error, t in " + ("[0, 1]" if problem == "smooth" else "[1/2, 1]"))
    fig.suptitle("spikede.fdeint: error against step size (log-log; slope = order)")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def run(out_dir: str | Path, alphas, n0: int, halvings: int) -> tuple[list[str], dict[str, Path], float]:
    """Run the study, write the report; return the summary lines, the paths and the seconds taken."""
    start = time.perf_counter()
    rows = convergence_study(alphas=alphas, n0=n0, halvings=halvings)
    paths = write_report(rows, out_dir)
    return summary_lines(rows), paths, time.perf_counter() - start
