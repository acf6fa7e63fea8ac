"""The smallest training loop: a fractional spiking network on scikit-learn's digits.

Copy this into your own project: rate-code the inputs, put FractionalLIF where an LIF
neuron would go, read out firing rates, train with Adam through the surrogate gradient.

    python examples/train_fractional_snn.py [--out DIR] [--quick]
"""

import argparse
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import torch  # noqa: E402
from sklearn.datasets import load_digits  # noqa: E402
from sklearn.model_selection import train_test_split  # noqa: E402
from torch import nn  # noqa: E402

import spikede  # noqa: E402

parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
parser.add_argument("--out", default="spikede-out/examples")
parser.add_argument("--quick", action="store_true")
args = parser.parse_args()

torch.manual_seed(0)
digits = load_digits()
x_train, x_test, y_train, y_test = train_test_split(
    torch.tensor(digits.data / 16.0, dtype=torch.float32), torch.tensor(digits.target),
    test_size=0.25, stratify=digits.target, random_state=0)
steps, epochs = 16, (2 if args.quick else 10)

model = nn.Sequential(
    spikede.TimeDistributed(nn.Linear(64, 128)),
    spikede.FractionalLIF(alpha=0.8, surrogate="gaussian", learn_alpha=True),
    spikede.TimeDistributed(nn.Linear(128, 10)),
    spikede.FractionalLIF(alpha=0.8, surrogate="gaussian"),
)
optimizer = torch.optim.Adam(model.parameters(), lr=5e-3)


def accuracy(x, y):
    with torch.no_grad():
        return (model(spikede.rate_encode(x, steps)).mean(0).argmax(1) == y).float().mean().item()


history = []
for epoch in range(epochs):
    for batch in torch.randperm(len(x_train)).split(32):
        rates = model(spikede.rate_encode(x_train[batch], steps)).mean(0)  # [B, 10] firing rates
        loss = nn.functional.cross_entropy(10 * rates, y_train[batch])
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    history.append(accuracy(x_test, y_test))
    print(f"epoch {epoch + 1}: loss {loss.item():.3f}, test accuracy {history[-1]:.3f}, "
          f"alpha {model[1].alpha.item():.3f}")

fig, ax = plt.subplots(figsize=(5, 3.5))
ax.plot(range(1, epochs + 1), history, "o-", label="test accuracy")
ax.set_xlabel("epoch")
ax.set_ylabel("accuracy")
ax.set_title("FractionalLIF network on digits")
ax.legend()
fig.tight_layout()
out = Path(args.out)
out.mkdir(parents=True, exist_ok=True)
fig.savefig(out / "train_fractional_snn.png", dpi=110)
print(f"wrote {out / 'train_fractional_snn.png'}")
