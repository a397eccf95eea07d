"""Hardware-aware differentiable architecture search with a roofline latency penalty.

A DARTS-style supernet (Liu et al., ICLR 2019) of ``CELLS`` residual cells; each cell mixes four candidate ops —
skip, a 64-wide linear layer, and 256- / 1024-wide MLP blocks — with softmax weights over architecture logits α. The
architecture loss (first-order DARTS, on a validation split) adds ``λ ·`` the *expected* latency of the cells at
batch 256 on a Jetson AGX Orin, computed by the roofline model (``diffsys.learned.op_latency``): each op's FLOPs and
bytes (fp16 weights and activations) against the device's fp16 tensor-core peak and LPDDR5 bandwidth. As λ
grows the search trades accuracy for latency; each derived architecture is retrained from scratch and evaluated on a
held-out test set, and the accuracy-vs-latency points are plotted (``hw_aware_nas.png``).

Task: 6-class classification of 8-dimensional Gaussian inputs by their (anisotropically scaled) radius — concentric
shells with no linear signal, so capacity pays and the accuracy/latency trade-off is real. Runs on a CPU in a few
minutes:

    python examples/hw_aware_nas.py [--steps 600] [--out hw_aware_nas.png]
"""

from __future__ import annotations

import argparse
import time

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import optax

import diffsys
from diffsys.learned import derive_architecture, expected_cost, mixed_op_weights, op_latency

D_IN, D, CLASSES, CELLS = 8, 64, 6, 4
OPS = ("skip", "linear64", "mlp256", "mlp1024")
BATCH = 256  # inference batch for the latency model


# -- data --------------------------------------------------------------------------------------------------------
def make_data(key, n):
    """Concentric shells: the class is the equal-frequency bin of a warped radius ``|x|`` (no linear signal)."""
    k_w, k_x = jax.random.split(key)
    x = jax.random.normal(k_x, (n, D_IN))
    scale = jnp.exp(0.5 * jax.random.normal(k_w, (D_IN,)))  # anisotropic shells
    r = jnp.sqrt(jnp.sum((x * scale) ** 2, axis=-1))
    edges = jnp.quantile(r, jnp.linspace(0, 1, CLASSES + 1)[1:-1])
    return x, jnp.searchsorted(edges, r)


# -- supernet ----------------------------------------------------------------------------------------------------
class Cell(eqx.Module):
    lin: eqx.nn.Linear
    mlp256: eqx.nn.MLP
    mlp1024: eqx.nn.MLP
    norm: eqx.nn.LayerNorm

    def __init__(self, key):
        k1, k2, k3 = jax.random.split(key, 3)
        self.lin = eqx.nn.Linear(D, D, key=k1)
        self.mlp256 = eqx.nn.MLP(D, D, 256, 1, activation=jax.nn.gelu, key=k2)
        self.mlp1024 = eqx.nn.MLP(D, D, 1024, 1, activation=jax.nn.gelu, key=k3)
        self.norm = eqx.nn.LayerNorm(D)

    def __call__(self, x, w):
        h = self.norm(x)
        outs = jnp.stack([jnp.zeros_like(h), jax.nn.gelu(self.lin(h)), self.mlp256(h), self.mlp1024(h)])
        return x + jnp.tensordot(w, outs, axes=1)


class SuperNet(eqx.Module):
    stem: eqx.nn.Linear
    cells: tuple
    head: eqx.nn.Linear

    def __init__(self, key):
        ks = jax.random.split(key, CELLS + 2)
        self.stem = eqx.nn.Linear(D_IN, D, key=ks[0])
        self.cells = tuple(Cell(k) for k in ks[1:-1])
        self.head = eqx.nn.Linear(D, CLASSES, key=ks[-1])

    def __call__(self, x, weights):
        h = self.stem(x)
        for cell, w in zip(self.cells, weights):
            h = cell(h, w)
        return self.head(h)


# -- per-op latency on the device (roofline, batch 1, fp16 weights) ----------------------------------------------
def op_costs(accelerator):
    """Latency (s) of each candidate op of one cell for a batch of ``BATCH`` inputs in one fused kernel (no
    per-op launch): FLOPs = 2·params·batch; bytes = fp16 weights once + fp16 activations in and out (and the hidden
    activations of the MLP blocks)."""
    params = np.array([0, D * D + D, 2 * D * 256 + 256 + D, 2 * D * 1024 + 1024 + D], float)
    hidden = np.array([0, 0, 256, 1024], float)
    flops = 2.0 * params * BATCH
    bytes_moved = 2.0 * params + np.where(params > 0, 2.0 * BATCH * (2 * D + 2 * hidden), 0.0)
    return op_latency(jnp.asarray(flops), jnp.asarray(bytes_moved), accelerator, "fp16", overhead_s=0.0)


def cross_entropy(logits, y):
    return -jnp.mean(jnp.take_along_axis(jax.nn.log_softmax(logits), y[:, None], axis=1))


def accuracy(logits, y):
    return float(jnp.mean(jnp.argmax(logits, -1) == y))


OPT_W, OPT_A = optax.adam(2e-3), optax.adam(3e-2)


def _loss_w(net, w, x, y):
    return cross_entropy(jax.vmap(net, in_axes=(0, None))(x, w), y)


def _loss_a(alpha, net, x, y, costs, lam):
    w = mixed_op_weights(alpha)
    latency = expected_cost(w, jnp.broadcast_to(costs, w.shape))
    return _loss_w(net, w, x, y) + lam * latency / (CELLS * jnp.max(costs))


@eqx.filter_jit
def _weight_step(net, w, sw, x, y, k):
    i = jax.random.choice(k, x.shape[0], (256,), replace=False)
    g = eqx.filter_grad(_loss_w)(net, w, x[i], y[i])
    upd, sw = OPT_W.update(g, sw, eqx.filter(net, eqx.is_array))
    return eqx.apply_updates(net, upd), sw


@eqx.filter_jit
def _arch_step(net, alpha, sa, x, y, k, costs, lam):
    j = jax.random.choice(k, x.shape[0], (256,), replace=False)
    ga = jax.grad(_loss_a)(alpha, net, x[j], y[j], costs, lam)
    upd, sa = OPT_A.update(ga, sa)
    return optax.apply_updates(alpha, upd), sa


def search(lam, data, costs, key, steps, warmup=0.5):
    """First-order DARTS: weights only for the first ``warmup`` fraction of the steps (so the candidate ops are
    trained before they are judged, as PC-DARTS does), then alternate a weight step on the train split and an α
    step on the validation split."""
    (xtr, ytr), (xva, yva) = data
    net = SuperNet(key)
    alpha = jnp.zeros((CELLS, len(OPS)))
    sw, sa = OPT_W.init(eqx.filter(net, eqx.is_array)), OPT_A.init(alpha)
    lam = jnp.asarray(lam, jnp.float32)
    for s_, k in enumerate(jax.random.split(key, steps)):
        net, sw = _weight_step(net, mixed_op_weights(alpha), sw, xtr, ytr, k)
        if s_ >= warmup * steps:
            alpha, sa = _arch_step(net, alpha, sa, xva, yva, jax.random.fold_in(k, 1), costs, lam)
    return derive_architecture(alpha)


def retrain(arch, data, test, key, steps):
    """Train the derived discrete architecture from scratch; return test accuracy."""
    (xtr, ytr), _ = data
    w = jax.nn.one_hot(arch, len(OPS))
    net = SuperNet(key)
    sw = OPT_W.init(eqx.filter(net, eqx.is_array))
    for k in jax.random.split(key, steps):
        net, sw = _weight_step(net, w, sw, xtr, ytr, k)
    xte, yte = test
    return accuracy(jax.vmap(net, in_axes=(0, None))(xte, w), yte)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--steps", type=int, default=600, help="search and retraining steps per penalty weight")
    ap.add_argument("--lambdas", default="0,0.05,0.2,0.5,2", help="latency penalty weights")
    ap.add_argument("--device", default="jetson_orin", help="accelerator preset")
    ap.add_argument("--out", default="hw_aware_nas.png")
    args = ap.parse_args(argv)
    acc_dev = diffsys.hardware.preset(args.device)
    costs = op_costs(acc_dev)
    print(f"per-op latency on {acc_dev.name} (µs): " + ", ".join(f"{o}={1e6 * float(c):.2f}"
                                                                for o, c in zip(OPS, costs)))
    key = jax.random.key(0)
    x, y = make_data(key, 12_000)
    data = ((x[:8000], y[:8000]), (x[8000:10000], y[8000:10000]))
    test = (x[10000:], y[10000:])
    rows = []
    for lam in map(float, args.lambdas.split(",")):
        t0 = time.perf_counter()
        arch = search(lam, data, costs, jax.random.key(1), args.steps)
        latency = float(jnp.sum(costs[arch]))
        acc = retrain(arch, data, test, jax.random.key(2), args.steps)
        rows.append((lam, latency, acc, [OPS[int(a)] for a in arch]))
        print(f"λ={lam:<5g} latency {1e6 * latency:7.2f} µs  test accuracy {acc:.3f}  cells {rows[-1][3]}  "
              f"({time.perf_counter() - t0:.1f} s)")
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5.5, 4))
    lat = [1e6 * r[1] for r in rows]
    acc = [r[2] for r in rows]
    ax.plot(lat, acc, "o-")
    labels = {}
    for r, xx, yy in zip(rows, lat, acc):  # one label per distinct architecture
        labels.setdefault((round(xx, 6), round(yy, 6)), []).append(f"{r[0]:g}")
    for (xx, yy), lams in labels.items():
        ax.annotate("λ=" + ", ".join(lams), (xx, yy), textcoords="offset points", xytext=(4, -12), fontsize=8)
    ax.set_xlabel(f"cells' latency, batch {BATCH}, on {acc_dev.name} (µs, roofline)")
    ax.set_ylabel("test accuracy")
    ax.set_title("Hardware-aware DARTS: accuracy vs latency")
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(args.out, dpi=120)
    print(f"wrote {args.out}")
    return rows


if __name__ == "__main__":
    main()
