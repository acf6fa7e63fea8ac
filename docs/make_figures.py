"""Regenerate the figures of the documentation: ``python docs/make_figures.py``.

Writes ``docs/tutorials/surrogates.png`` (the five surrogate derivatives at their default
scales) and ``docs/tutorials/convergence.png`` (the `spikede convergence` study).
"""

import tempfile
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import torch  # noqa: E402

from spikede import available_surrogates, spike  # noqa: E402
from spikede.experiments import run  # noqa: E402

here = Path(__file__).parent / "tutorials"
x = torch.linspace(-3, 3, 1201, dtype=torch.float64)
fig, ax = plt.subplots(figsize=(6.5, 4))
for name in ("sigmoid", "arctan", "linear", "gaussian", "noisy"):
    xr = x.clone().requires_grad_(True)
    (grad,) = torch.autograd.grad(spike(xr, name, training=False).sum(), xr)
    style = "--" if name == "noisy" else "-"
    label = f"{name} (eval backward = sigmoid bump)" if name == "noisy" else name
    ax.plot(x, grad, style, label=label)
ax.set_xlabel("x = U - theta")
ax.set_ylabel("surrogate derivative sigma'(x)")
ax.set_title("The five surrogates at their default scales (each has unit area)")
ax.legend(fontsize=8)
fig.tight_layout()
fig.savefig(here / "surrogates.png", dpi=110)
print(f"wrote {here / 'surrogates.png'}; registered surrogates: {', '.join(available_surrogates())}")
with tempfile.TemporaryDirectory() as tmp:
    _, paths, _ = run(tmp, (0.3, 0.5, 0.7, 0.9), 16, 5)
    (here / "convergence.png").write_bytes(paths["png"].read_bytes())
print(f"wrote {here / 'convergence.png'}")
