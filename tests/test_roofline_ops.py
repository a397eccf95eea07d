"""Op library and op graphs: counts against independent derivations and published model sizes."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import diffsys.hardware as H
import diffsys.roofline as R


def test_gemm_counts_and_bytes_property():
    op = R.gemm(128, 256, 512, batch=3, bytes_per_element=2)
    assert float(op.flops) == 2 * 3 * 128 * 256 * 512
    assert float(op.bytes_read) == 3 * (128 * 512 + 512 * 256) * 2
    assert float(op.bytes_written) == 3 * 128 * 256 * 2
    assert float(op.bytes) == float(op.bytes_read + op.bytes_written)
    shared = R.gemm(128, 256, 512, batch=3, shared_b=True)
    assert float(shared.bytes_read) == (3 * 128 * 512 + 512 * 256) * 2


@pytest.mark.parametrize("sq, skv", [(7, 7), (1, 13), (5, 12), (16, 16)])
def test_causal_pair_count_matches_an_explicit_mask(sq, skv):
    # queries sit at the end of the context: query i (0-based) sees keys 0 .. skv - sq + i
    q = np.arange(sq)[:, None] + (skv - sq)
    mask = np.arange(skv)[None, :] <= q
    assert float(R.attention_pairs(sq, skv, causal=True)) == mask.sum()
    assert float(R.attention_pairs(sq, skv, causal=False)) == sq * skv


def test_attention_flash_vs_naive_and_gqa():
    kw = dict(batch=2, seq_q=1024, seq_kv=1024, n_heads=16, head_dim=64)
    flash = R.attention(**kw, causal=True, flash=True)
    naive = R.attention(**kw, causal=True, flash=False)
    # the IO-aware kernel skips masked blocks; the naive one computes and then masks the full score matrix
    assert float(naive.flops) > 1.9 * float(flash.flops) * 0.99
    # naive attention round-trips the N x N score/probability matrices: Θ(N²) extra bytes (Dao et al. 2022)
    extra = float(naive.bytes - flash.bytes)
    assert extra == pytest.approx(4 * 2 * 16 * 1024 * 1024 * 2)
    mha = R.attention(**kw, n_kv_heads=None)
    gqa = R.attention(**kw, n_kv_heads=4)
    mqa = R.attention(**kw, n_kv_heads=1)
    assert float(mha.flops) == float(gqa.flops) == float(mqa.flops)
    assert float(mha.bytes) > float(gqa.bytes) > float(mqa.bytes)
    # K and V bytes scale with the kv head count
    kv = lambda o: float(o.bytes_read) - 2 * 1024 * 16 * 64 * 2  # minus Q
    assert kv(mha) / kv(gqa) == pytest.approx(4.0)
    assert 0 < float(flash.matrix) < 1


def test_conv_output_size_matches_lax_conv():
    for h, k, s, p in [(224, 7, 2, 3), (56, 3, 2, 1), (56, 1, 2, 0), (15, 3, 1, 1), (17, 5, 3, 0)]:
        x = jnp.zeros((1, 3, h, h))
        w = jnp.zeros((4, 3, k, k))
        out = jax.lax.conv_general_dilated(x, w, (s, s), [(p, p), (p, p)])
        assert float(R.conv_output_size(h, k, s, p)) == out.shape[-1]


def test_conv_flops_by_brute_force_count():
    # count MACs of a tiny conv by enumeration
    b, h, cin, cout, k, s = 2, 6, 3, 4, 3, 1
    ho = int(R.conv_output_size(h, k, s))
    macs = b * ho * ho * cout * cin * k * k
    assert float(R.conv2d(b, h, h, cin, cout, k, s).flops) == 2 * macs
    dw = R.depthwise_conv2d(b, h, h, cin, k, s)
    assert float(dw.flops) == 2 * b * ho * ho * cin * k * k
    assert float(dw.matrix) == 0.0


def test_resnet50_and_vit_b16_match_published_sizes():
    # ResNet-50 v1.5: 4.1 GMAC per 224x224 image (torchvision / fvcore; He et al. 2016 report 3.8e9 for v1)
    rn = R.resnet50_layers()
    macs = float(jnp.sum(rn.ops.flops * rn.ops.matrix)) / 2
    assert 3.9e9 < macs < 4.2e9, macs
    assert sum(n.endswith(("conv_a", "conv_b", "conv_c", "downsample")) for n in rn.names) + 2 == 54  # 53 conv + fc
    # ViT-B/16: 17.6 GFLOPs (multiply-adds) per image (DeiT, Touvron et al. 2021, Table 1)
    vit = R.vit_b16_layers()
    vmacs = float(jnp.sum(vit.ops.flops * vit.ops.matrix)) / 2
    assert abs(vmacs / 17.6e9 - 1) < 0.03, vmacs
    # batch scales every op linearly except weight reads
    rn8 = R.resnet50_layers(batch=8)
    np.testing.assert_allclose(np.asarray(rn8.ops.flops), 8 * np.asarray(rn.ops.flops), rtol=1e-6)


def test_transformer_layer_flops_follow_the_6N_rule():
    b, s, h, a = 4, 512, 1024, 16
    fwd = R.transformer_layer_ops(b, s, h, a, mode="forward", causal=False)
    train = R.transformer_layer_ops(b, s, h, a, mode="train", causal=False)
    params = 12 * h * h  # 4h² attention projections + 8h² MLP (biases ignored)
    tokens = b * s
    lin = sum(float(fwd[n].flops) for n in ("qkv_proj", "out_proj", "mlp_up", "mlp_down"))
    assert lin == pytest.approx(2 * params * tokens, rel=1e-6)  # forward = 2N per token (Kaplan et al. 2020)
    att = float(fwd["attention"].flops * fwd["attention"].matrix)
    assert att == pytest.approx(4 * b * s * s * h, rel=1e-6)
    t_lin = sum(float(train[f"{p}.{n}"].flops) for p in ("fwd", "bwd")
                for n in ("qkv_proj", "out_proj", "mlp_up", "mlp_down"))
    assert t_lin == pytest.approx(6 * params * tokens, rel=1e-6)  # training = 6N per token
    assert train.names[:10] == tuple(f"fwd.{n}" for n in fwd.names)


def test_decode_reads_weights_and_kv_cache():
    b, ctx, h, a, kvh = 8, 4096, 4096, 32, 8
    dec = R.transformer_layer_ops(b, 1, h, a, kvh, mode="decode", kv_len=ctx, gated_mlp=True, d_ff=14336,
                                  norm="rmsnorm")
    weights = (h * (a + 2 * kvh) * (h // a) + h * h + 3 * h * 14336) * 2
    kv = 2 * b * ctx * kvh * (h // a) * 2
    total = float(dec.total().bytes)
    assert weights + kv < total < 1.02 * (weights + kv)
    tp2 = R.transformer_layer_ops(b, 1, h, a, kvh, mode="decode", kv_len=ctx, gated_mlp=True, d_ff=14336, tp=2)
    assert float(tp2.total().flops) == pytest.approx(float(dec.total().flops) / 2, rel=0.01)


def test_traced_sizes_and_graph_time_vmap():
    h100 = H.preset("h100")

    def layer_time(seq):
        return R.graph_time(R.transformer_layer_ops(2.0, seq, 2048.0, 16, mode="forward"), h100).time_s

    seqs = jnp.array([256.0, 1024.0, 4096.0])
    t, g = jax.jit(jax.vmap(jax.value_and_grad(layer_time)))(seqs)
    # sizes passed as plain Python numbers give the same times as traced sizes
    direct = [float(layer_time(256.0))]
    np.testing.assert_allclose(np.asarray(t)[:1], direct, rtol=2e-5)
    assert np.all(np.diff(np.asarray(t)) > 0)
    assert np.all(np.isfinite(np.asarray(g))) and np.all(np.asarray(g) > 0)


def test_graph_items_total_and_bad_input():
    g = R.OpGraph.from_ops([("a", R.gemm(8, 8, 8)), ("b", R.elementwise(64))])
    assert len(g) == 2 and [n for n, _ in g.items()] == ["a", "b"]
    tot = g.total()
    assert float(tot.flops) == 2 * 8**3 + 64
    assert float(tot.matrix) == pytest.approx(2 * 8**3 / (2 * 8**3 + 64))
    with pytest.raises(ValueError, match="mode"):
        R.transformer_layer_ops(1, 8, 64, 4, mode="training")
    with pytest.raises(ValueError, match="dtype"):
        R.gemm(8, 8, 8, bytes_per_element="bf17")
    with pytest.raises(ValueError, match="bytes_per_element"):
        R.gemm(8, 8, 8, bytes_per_element=-2)
    with pytest.raises(ValueError, match="at least one op"):
        R.OpGraph.from_ops([])
