"""Fuzz suite, Python constructors: specs built with hostile field values (NaN, ±inf, negatives, zeros, huge
numbers, strings, None, containers). Property: ``ValueError`` naming the field, or a spec whose leaves are finite --
except the fields where ``inf`` documents "unlimited" (bandwidth and capacity caps) and NaN "unknown" (area)."""

import inspect

import pytest
from _fuzz import COUNTS, FUZZ, HOSTILE_VALUES, non_finite_leaves
from hypothesis import given, settings
from hypothesis import strategies as st

from diffsys import hardware, llm, power, topologies

#: (constructor, valid keyword arguments, fields where inf is accepted as "unlimited"/"ideal")
SPECS = {
    "MemoryLevel": (hardware.MemoryLevel, dict(name="hbm", capacity_B=8e10, bandwidth_Bps=2e12),
                    ("capacity_B", "bandwidth_Bps", "area_mm2")),
    "PowerSpec": (hardware.PowerSpec, dict(tdp_W=700.0), ("tdp_W",)),
    "Dimension": (topologies.Dimension, dict(kind="switch", size=8, bandwidth_Bps=3e11),
                  ("bandwidth_Bps", "nic_bandwidth_Bps", "local_Bps")),
    "NocParams": (topologies.NocParams, {}, ()),
    "ThermalConfig": (power.ThermalConfig, {}, ("thermal_threshold",)),
    "Parallelism": (llm.Parallelism, dict(tp=2, pp=2, dp=2, microbatch=1, global_batch=8), ()),
    "Transformer": (llm.Transformer, dict(name="t", hidden=1024, ffn=4096, n_layers=4, n_heads=16, n_kv_heads=16,
                                          head_dim=64, vocab=1000, seq_len=512, max_seq_len=512), ()),
}
_STRUCTURAL = {"name", "kind", "mlp", "model_type", "grid_map_mode", "recompute", "tree", "nccl", "tied_embeddings",
               "block_omit_lateral", "in_network", "grid_rows", "grid_cols"}


def _fields(cls):
    return [p for p in inspect.signature(cls).parameters if p not in _STRUCTURAL]


@pytest.mark.parametrize("spec", sorted(SPECS))
def test_valid_arguments_build(spec):
    cls, kw, _ = SPECS[spec]
    cls(**kw)


@settings(FUZZ, max_examples=300)
@given(data=st.data(), spec=st.sampled_from(sorted(SPECS)))
def test_constructors_reject_or_stay_finite(data, spec):
    cls, kw, unlimited = SPECS[spec]
    kw = dict(kw)
    hostile = data.draw(st.dictionaries(st.sampled_from(_fields(cls)), st.sampled_from(HOSTILE_VALUES), min_size=1,
                                        max_size=2))
    kw.update(hostile)
    try:
        obj = cls(**kw)
    except ValueError as e:
        assert str(e) and "\n" not in str(e).strip()
        COUNTS["constructor rejected (ValueError)"] += 1
        return
    bad = non_finite_leaves(obj, allow=unlimited)
    assert not bad, f"{spec}({hostile}) accepted non-finite {bad}"
    for field, value in hostile.items():  # NaN is never accepted where it is not "unknown"
        if isinstance(value, float) and value != value:
            assert field in ("area_mm2", "thermal_threshold"), (spec, field)
    COUNTS["constructor accepted (finite)"] += 1


@settings(FUZZ, max_examples=60)
@given(field=st.sampled_from(("matrix_flops", "vector_flops", "frequency_Hz", "num_cores", "sparsity_speedup",
                              "link_bandwidth_Bps", "energy_J_per_flop")), value=st.sampled_from(HOSTILE_VALUES))
def test_accelerator_fields(field, value):
    base = hardware.preset("h100")
    kw = dict(name="x", matrix_flops=dict(base.matrix_flops), vector_flops=dict(base.vector_flops),
              memory=base.memory, power=base.power)
    kw[field] = {"bf16": value} if field in ("matrix_flops", "vector_flops") else value
    try:
        acc = hardware.Accelerator(**kw)
    except ValueError:
        COUNTS["constructor rejected (ValueError)"] += 1
        return
    assert not non_finite_leaves(acc, allow=("area_mm2", "nic_bandwidth_Bps", "link_bandwidth_Bps")), (field, value)
    COUNTS["constructor accepted (finite)"] += 1
