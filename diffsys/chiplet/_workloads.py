"""Layer chains for chiplet partitioning: ResNet-50, ViT-B/16 and a transformer block.

The chiplet model needs, per layer, the *split* of its traffic into weights, input activations and output
activations (to derive the die-to-die traffic of a partition) and a partition *group* (layers of one group share
their partition fractions and strategy). Op-level FLOP/byte totals live in :mod:`diffsys.roofline`; this module
only carries the shape-level split the partitioning model needs.

Sources: K. He et al., "Deep Residual Learning for Image Recognition", CVPR 2016, Table 1 (ResNet-50, bottleneck
blocks [3, 4, 6, 3], stride on the 3×3 conv as in torchvision v1.5; 4.1 GMAC at 224²); A. Dosovitskiy et al.,
"An Image is Worth 16x16 Words", ICLR 2021, Table 1 (ViT-B/16: 12 layers, d=768, 12 heads, MLP 3072; 17.6 GFLOP).
FLOPs count a multiply-add as 2.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .._checks import check_integer, check_positive

LINEAR, ATTENTION = 0, 1


@dataclass(frozen=True, eq=False)
class LayerChain:
    """A chain of layers executed one after another (numpy arrays; static structure of the model).

    Attributes:
        name: workload name.
        layer_names: per-layer labels.
        flops: FLOPs per layer.
        weight_B: weight bytes per layer (0 for attention score/context products).
        in_B, out_B: input / output activation bytes per layer.
        kind: ``LINEAR`` (GEMM / conv) or ``ATTENTION`` (per-head batched products without weights).
        group: partition group of each layer (``0..G-1``); groups share partition fractions and strategy.
        group_names: label of each group.
    """

    name: str
    layer_names: tuple
    flops: np.ndarray
    weight_B: np.ndarray
    in_B: np.ndarray
    out_B: np.ndarray
    kind: np.ndarray
    group: np.ndarray
    group_names: tuple

    @property
    def num_layers(self) -> int:
        return len(self.layer_names)

    @property
    def num_groups(self) -> int:
        return len(self.group_names)

    @property
    def total_flops(self) -> float:
        return float(self.flops.sum())

    @staticmethod
    def from_rows(name, rows, group_names):
        """``rows``: (layer_name, flops, weight_B, in_B, out_B, kind, group_name)."""
        gidx = {g: i for i, g in enumerate(group_names)}
        for r in rows:
            check_positive(f"{name}.{r[0]}.flops", r[1])
            for j, f in zip((2, 3, 4), ("weight_B", "in_B", "out_B")):
                check_positive(f"{name}.{r[0]}.{f}", r[j], allow_zero=True)
            if r[6] not in gidx:
                raise ValueError(f"{name}.{r[0]}.group must be one of {list(group_names)}, got {r[6]!r}")
        return LayerChain(
            name=name,
            layer_names=tuple(r[0] for r in rows),
            flops=np.array([r[1] for r in rows], float),
            weight_B=np.array([r[2] for r in rows], float),
            in_B=np.array([r[3] for r in rows], float),
            out_B=np.array([r[4] for r in rows], float),
            kind=np.array([r[5] for r in rows], int),
            group=np.array([gidx[r[6]] for r in rows], int),
            group_names=tuple(group_names),
        )


def _conv(name, hw_in, cin, cout, k, stride, batch, bpe, group):
    hw_out = hw_in // stride
    flops = 2.0 * hw_out * hw_out * cout * cin * k * k * batch
    return (name, flops, cin * cout * k * k * bpe, hw_in * hw_in * cin * batch * bpe,
            hw_out * hw_out * cout * batch * bpe, LINEAR, group)


def resnet50(batch: int = 1, bytes_per_element: float = 2.0, image: int = 224) -> LayerChain:
    """ResNet-50 inference (53 convolutions + FC); groups: stem, stage1..stage4, fc."""
    check_integer("batch", batch, 1)
    check_positive("bytes_per_element", bytes_per_element)
    b, e = batch, bytes_per_element
    rows = [_conv("conv1", image, 3, 64, 7, 2, b, e, "stem")]
    hw = image // 4  # after the stride-2 conv and the stride-2 max-pool
    cin = 64
    for s, (blocks, mid, out) in enumerate([(3, 64, 256), (4, 128, 512), (6, 256, 1024), (3, 512, 2048)]):
        g = f"stage{s + 1}"
        for blk in range(blocks):
            stride = 2 if (blk == 0 and s > 0) else 1
            p = f"{g}.{blk}"
            rows.append(_conv(p + ".conv1", hw, cin, mid, 1, 1, b, e, g))
            rows.append(_conv(p + ".conv2", hw, mid, mid, 3, stride, b, e, g))
            rows.append(_conv(p + ".conv3", hw // stride, mid, out, 1, 1, b, e, g))
            if blk == 0:
                rows.append(_conv(p + ".downsample", hw, cin, out, 1, stride, b, e, g))
            hw //= stride
            cin = out
    rows.append(("fc", 2.0 * 2048 * 1000 * b, 2048 * 1000 * e, 2048 * b * e, 1000 * b * e, LINEAR, "fc"))
    return LayerChain.from_rows("resnet50", rows, ("stem", "stage1", "stage2", "stage3", "stage4", "fc"))


def transformer_block(tokens: int = 197, d_model: int = 768, heads: int = 12, d_ff: int = 3072, batch: int = 1,
                      bytes_per_element: float = 2.0, prefix: str = "block") -> list:
    """Rows of one pre-norm encoder block: qkv, scores, context, proj, fc1, fc2 (norms/softmax omitted)."""
    for f, v in (("tokens", tokens), ("d_model", d_model), ("heads", heads), ("d_ff", d_ff), ("batch", batch)):
        check_integer(f, v, 1)
    if d_model % heads:
        raise ValueError(f"d_model must be divisible by heads, got d_model={d_model}, heads={heads}")
    t, d, b, e = tokens * batch, d_model, batch, bytes_per_element

    def gemm(name, k, n, group):
        return (f"{prefix}.{name}", 2.0 * t * k * n, k * n * e, t * k * e, t * n * e, LINEAR, group)

    attn = 2.0 * tokens * tokens * d * b  # QK^T and AV, each
    return [
        gemm("qkv", d, 3 * d, "qkv"),
        (f"{prefix}.scores", attn, 0.0, t * 3 * d * e, tokens * tokens * heads * b * e, ATTENTION, "attention"),
        (f"{prefix}.context", attn, 0.0, (tokens * tokens * heads * b + t * d) * e, t * d * e, ATTENTION,
         "attention"),
        gemm("proj", d, d, "proj"),
        gemm("fc1", d, d_ff, "mlp"),
        gemm("fc2", d_ff, d, "mlp"),
    ]


def transformer(layers: int = 1, tokens: int = 197, d_model: int = 768, heads: int = 12, d_ff: int = 3072,
                batch: int = 1, bytes_per_element: float = 2.0, name: str = "transformer") -> LayerChain:
    """``layers`` identical encoder blocks; groups: qkv, attention, proj, mlp (shared across blocks)."""
    check_integer("layers", layers, 1)
    rows = []
    for i in range(layers):
        rows += transformer_block(tokens, d_model, heads, d_ff, batch, bytes_per_element, prefix=f"block{i}")
    return LayerChain.from_rows(name, rows, ("qkv", "attention", "proj", "mlp"))


def vit_b16(batch: int = 1, bytes_per_element: float = 2.0) -> LayerChain:
    """ViT-B/16 at 224² (196 patches + class token): patch embedding, 12 encoder blocks, classification head."""
    check_integer("batch", batch, 1)
    e, b, d = bytes_per_element, batch, 768
    rows = [("embed", 2.0 * 196 * 768 * 768 * b, 768 * 768 * e, 224 * 224 * 3 * b * e, 197 * d * b * e, LINEAR,
             "embed")]
    for i in range(12):
        rows += transformer_block(197, d, 12, 3072, batch, e, prefix=f"block{i}")
    rows.append(("head", 2.0 * d * 1000 * b, d * 1000 * e, d * b * e, 1000 * b * e, LINEAR, "head"))
    return LayerChain.from_rows("vit_b16", rows, ("embed", "qkv", "attention", "proj", "mlp", "head"))


WORKLOADS = {"resnet50": resnet50, "vit_b16": vit_b16, "transformer": transformer}


def workload(name: str, **kwargs) -> LayerChain:
    """A workload by name (``resnet50``, ``vit_b16``, ``transformer``)."""
    from .._checks import check_choice

    check_choice("workload", name, WORKLOADS)
    return WORKLOADS[name](**kwargs)
