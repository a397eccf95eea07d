"""Measured serving rows (aiconfigurator silicon samples, ``validation/serving/measured_h100.csv``) as specs.

Rows are grouped by what is static in a :class:`ServingSpec` (model, GEMM precision, KV dtype); inside a group the
specs are stacked (one pytree with a leading row axis) so the model is evaluated with one ``vmap``. The fit/report
split is by the parity of ``crc32(id)``: even rows fit the backend constants, odd rows are reported.
"""

from __future__ import annotations

import csv
import os
import zlib

import equinox as eqx
import jax.numpy as jnp
import numpy as np

from ._catalog import model_arch
from ._serving import BACKEND_CONSTANT_NAMES, ServingSpec, backend_constants

#: model families of the validation table, by HF id
FAMILIES = {"meta-llama/Llama-3.1-8B-Instruct": "Llama-3.1-8B", "meta-llama/Llama-3.1-70B": "Llama-3.1-70B",
            "Qwen/Qwen3-32B": "Qwen3-32B", "Qwen/Qwen3-235B-A22B-FP8": "Qwen3-235B-A22B",
            "openai/gpt-oss-120b": "gpt-oss-120b", "deepseek-ai/DeepSeek-R1": "DeepSeek-R1/V3",
            "deepseek-ai/DeepSeek-V3": "DeepSeek-R1/V3", "MiniMaxAI/MiniMax-M2.5": "MiniMax-M2.5"}
_PRECISION = {"": "bf16", "bf16": "bf16", "fp8": "fp8", "fp8_block": "fp8", "nvfp4": "fp4", "mxfp4": "fp4"}


def default_csv() -> str:
    here = os.path.dirname(os.path.abspath(__file__))
    return os.path.normpath(os.path.join(here, "..", "..", "..", "shared", "validation", "serving",
                                         "measured_h100.csv"))


def is_fit_row(row_id: str) -> bool:
    """The stated split: rows with an even ``crc32(id)`` fit, odd rows are held out."""
    return zlib.crc32(row_id.encode()) % 2 == 0


def _num(row, key, default=1.0):
    v = row.get(key, "")
    return float(v) if v not in ("", None) else default


def read_rows(path: str | None = None) -> list[dict]:
    """Usable rows (a concurrency and a TP degree present) as dicts of parsed fields."""
    path = path or default_csv()
    out = []
    with open(path, encoding="utf-8") as f:
        for r in csv.DictReader(f):
            dis = r["mode"] == "disagg"
            pre = "decode_" if dis else ""
            if r["concurrency"] in ("", None) or r[f"{pre}tp_size"] in ("", None):
                continue
            prec = _PRECISION.get(r["gemm_quant_mode"], "fp8")
            out.append(dict(
                id=r["id"], model=r["model_path"], family=FAMILIES.get(r["model_path"], r["model_path"]),
                backend=r["backend"], mode=r["mode"], precision=prec,
                kv_dtype="fp8" if prec == "fp8" and r["backend"] == "trtllm" else "bf16",
                isl=_num(r, "isl"), osl=_num(r, "osl"), concurrency=_num(r, "concurrency"),
                tp=_num(r, f"{pre}tp_size"), pp=_num(r, f"{pre}pp_size"), adp=_num(r, f"{pre}attention_dp_size"),
                ep=_num(r, f"{pre}moe_ep_size"), decode_workers=_num(r, "decode_num_workers"),
                prefill_workers=_num(r, "prefill_num_workers"), prefill_tp=_num(r, "prefill_tp_size"),
                prefill_adp=_num(r, "prefill_attention_dp_size"), prefill_ep=_num(r, "prefill_moe_ep_size"),
                disagg=1.0 if dis else 0.0, ttft_s=float(r["silicon_ttft_ms"]) / 1e3,
                tpot_s=float(r["silicon_tpot_ms"]) / 1e3, fit=is_fit_row(r["id"])))
    return out


_DESIGN = ("tp", "pp", "adp", "ep", "prefill_tp", "prefill_adp", "prefill_ep", "prefill_workers", "decode_workers",
           "disagg", "isl", "osl", "concurrency")


def group_rows(rows: list[dict]) -> dict:
    """``{(model, precision, kv_dtype): [rows]}`` (the static part of a spec)."""
    groups: dict = {}
    for r in rows:
        groups.setdefault((r["model"], r["precision"], r["kv_dtype"]), []).append(r)
    return groups


def stacked_spec(rows: list[dict], accel, system):
    """``(base, values)``: the group's base spec and a dict of per-row design leaves and backend constants (from
    ``serving.json``), each with a leading axis over ``rows`` (same model, precision, KV dtype); evaluate with
    :func:`evaluate_rows`."""
    r0 = rows[0]
    arch = model_arch(r0["model"])
    fields = {k: jnp.asarray([r[k] for r in rows]) for k in _DESIGN}
    consts = {k: jnp.asarray([backend_constants(r["backend"])[k] for r in rows]) for k in BACKEND_CONSTANT_NAMES}
    base = ServingSpec(arch=arch, accel=accel, system=system, precision=r0["precision"], kv_dtype=r0["kv_dtype"])
    return base, {**fields, **consts}


def evaluate_rows(base: ServingSpec, values: dict, model=None):
    """``vmap`` of the serving model over the per-row ``values`` of one group."""
    from ._serving import serving_model

    model = model or serving_model
    return eqx.filter_vmap(lambda v: model(_replace(base, v)))(values)


def _replace(spec, values: dict):
    names = list(values)
    return eqx.tree_at(lambda s: [getattr(s, n) for n in names], spec, [values[n] for n in names])


def measured(rows, key) -> np.ndarray:
    return np.asarray([r[key] for r in rows], dtype=float)
