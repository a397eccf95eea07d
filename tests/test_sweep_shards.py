"""Shards of a sweep and their exact merge; per-shard checkpoints; results as data frames."""

import os

import jax
import numpy as np
import pytest

from diffsys.optimize import load_result, merge, save_result, shard_checkpoint_path, shard_chunks, sweep

from test_sweep import TE, model, space

SP = space()  # one space object: the compiled engine is cached per (model, space identity, settings)

KW = dict(top_k=9, pareto=("time_s", "energy_J"), pareto_capacity=512, chunk_size=256, progress=False,
          histograms={"time_s": (0.0, 1.0, 16)})


def assert_same(a, b):
    np.testing.assert_array_equal(a.top_objective, b.top_objective)
    np.testing.assert_array_equal(a.top_index, b.top_index)
    for n in a.top_points:
        np.testing.assert_array_equal(a.top_points[n], b.top_points[n])
    np.testing.assert_array_equal(np.asarray(a.top_metrics.energy_J), np.asarray(b.top_metrics.energy_J))
    oa, ob = np.argsort(a.pareto_index), np.argsort(b.pareto_index)
    np.testing.assert_array_equal(a.pareto_index[oa], b.pareto_index[ob])
    np.testing.assert_array_equal(a.pareto_objectives[oa], b.pareto_objectives[ob])
    for n in a.histograms:
        np.testing.assert_array_equal(a.histograms[n], b.histograms[n])
    assert (a.n_evaluated, a.n_feasible) == (b.n_evaluated, b.n_feasible)
    assert a.labels() == b.labels() and a.pareto_labels() == b.pareto_labels()


def test_shards_are_disjoint_and_cover_the_chunks():
    for n_chunks in (1, 5, 12, 13):
        for n in (1, 2, 3, 5):
            blocks = [list(shard_chunks((i, n), n_chunks)) for i in range(n)]
            assert sorted(c for b in blocks for c in b) == list(range(n_chunks))
        # nesting: shard (i, n) is the union of shards (i*m + j, n*m)
        assert list(shard_chunks((1, 3), n_chunks)) == [c for j in range(2) for c in shard_chunks((2 + j, 6),
                                                                                                    n_chunks)]


@pytest.mark.parametrize("n", [2, 3])
def test_merge_of_shards_equals_the_single_run(n):
    whole = sweep(model, SP, "time_s", **KW)  # 12 chunks, the last one partial
    parts = [sweep(model, SP, "time_s", shard=(i, n), **KW) for i in range(n)]
    assert sum(p.n_evaluated for p in parts) == 3000
    merged = merge(parts[::-1])  # order of the shards does not matter
    assert merged.shards == [(0, 1)]
    assert_same(merged, whole)


def test_merge_is_exact_with_ties_and_samples():
    """A model with many equal objectives: ties go to the earlier point in both the single run and the merge."""
    def coarse(d, *, temperature=0.0):
        m = model(d)
        return TE(jax.numpy.round(m.time_s * 20) / 20, m.energy_J, feasible=m.feasible)

    kw = dict(KW, chunk_size=128)
    whole = sweep(coarse, SP, "time_s", **kw)
    assert_same(merge([sweep(coarse, SP, "time_s", shard=(i, 4), **kw) for i in range(4)]), whole)
    key = jax.random.key(3)
    whole = sweep(model, SP, "time_s", n_samples=1000, key=key, **kw)
    assert_same(merge([sweep(model, SP, "time_s", n_samples=1000, key=key, shard=(i, 2), **kw)
                       for i in range(2)]), whole)


def test_merge_refuses_overlaps_and_other_settings():
    a = sweep(model, SP, "time_s", shard=(0, 2), **KW)
    with pytest.raises(ValueError, match="overlapping"):
        merge([a, a])
    b = sweep(model, SP, "time_s", shard=(1, 2), **dict(KW, top_k=3))
    with pytest.raises(ValueError, match="different top_k"):
        merge([a, b])
    with pytest.raises(ValueError, match="shard"):
        sweep(model, SP, "time_s", shard=(2, 2), progress=False)
    with pytest.raises(ValueError, match="at least one"):
        merge([])


def test_shard_checkpoints_are_distinct_files_and_resume(tmp_path):
    ck = str(tmp_path / "run.npz")
    assert shard_checkpoint_path(ck, (1, 4)).endswith("run.shard1of4.npz")
    assert shard_checkpoint_path(ck, None) == ck == shard_checkpoint_path(ck, (0, 1))
    parts = [sweep(model, SP, "time_s", shard=(i, 2), checkpoint=ck, checkpoint_every=2, **KW)
             for i in range(2)]
    assert os.path.exists(shard_checkpoint_path(ck, (0, 2))) and os.path.exists(shard_checkpoint_path(ck, (1, 2)))
    resumed = sweep(model, SP, "time_s", shard=(1, 2), checkpoint=ck, resume=True, **KW)
    assert_same(resumed, parts[1])
    with pytest.raises(ValueError, match="different top_k"):
        sweep(model, SP, "time_s", shard=(1, 2), checkpoint=ck, resume=True, **dict(KW, top_k=3))


def test_saved_shards_merge_after_loading(tmp_path):
    whole = sweep(model, SP, "time_s", **KW)
    paths = [save_result(sweep(model, SP, "time_s", shard=(i, 3), **KW), str(tmp_path / f"s{i}.npz"))
             for i in range(3)]
    merged = merge([load_result(p, SP) for p in paths])
    assert merged.labels() == whole.labels() and merged.pareto_labels() == whole.pareto_labels()
    assert merged.n_feasible == whole.n_feasible
    from test_sweep import AB
    from diffsys.space import Continuous, DesignSpace, Integer

    other = DesignSpace({"a": Continuous(0.0, 1.0, grid=49), "b": Integer(0, 59)}, base=AB())
    with pytest.raises(ValueError, match="fingerprint"):
        load_result(paths[0], other)


def test_compile_and_run_seconds_are_reported():
    r = sweep(model, SP, "time_s", **dict(KW, chunk_size=300))
    assert 0.0 <= r.compile_seconds <= r.seconds and r.run_seconds == pytest.approx(r.seconds - r.compile_seconds)
    again = sweep(model, SP, "time_s", **dict(KW, chunk_size=300))  # the cached engine: nothing compiles
    assert again.compile_seconds < 0.25 * r.compile_seconds


def test_to_pandas_and_to_xarray():
    pd = pytest.importorskip("pandas")
    r = sweep(model, SP, "time_s", **KW)
    df = r.to_pandas()
    assert isinstance(df, pd.DataFrame) and len(df) == 9 and list(df.columns[:2]) == ["rank", "index"]
    assert df["time_s"].is_monotonic_increasing and {"a", "b", "energy_J"} <= set(df.columns)
    front = r.to_pandas("pareto")
    assert len(front) == len(r.pareto_objectives) and front["time_s"].is_monotonic_increasing
    h = r.histogram_frame()
    assert int(h["count"].sum()) == r.n_feasible
    xr = pytest.importorskip("xarray")
    ds = r.to_xarray()
    assert isinstance(ds, xr.Dataset) and ds["time_s"].shape == (50, 60)
    assert int(np.isfinite(ds["time_s"].values).sum()) == 9
    best = r.labels()[0]
    assert float(ds["time_s"].sel(a=best["a"], b=best["b"], method="nearest")) == pytest.approx(best["time_s"])


# -- the command line ----------------------------------------------------------------------------------------------
ROOFLINE = ["sweep", "--problem", "roofline", "--samples", "3000", "--chunk-size", "512", "--top", "5", "--json",
            "--no-cache"]


def _run(argv, capsys):
    import json

    from diffsys.cli import main

    rc = main([str(a) for a in argv])
    out = capsys.readouterr()
    return rc, (json.loads(out.out) if rc == 0 else None), out.err


def test_cli_shards_merge_to_the_whole_run_with_provenance(tmp_path, capsys):
    import json

    rc, whole, _ = _run(ROOFLINE + ["--seed", "5", "--out", tmp_path / "whole"], capsys)
    assert rc == 0
    for i in range(3):
        assert _run(ROOFLINE + ["--seed", "5", "--shard", f"{i}/3", "--out", tmp_path / f"s{i}"], capsys)[0] == 0
    rc, merged, _ = _run(["merge", *(tmp_path / f"s{i}" for i in range(3)), "--out", tmp_path / "m", "--json"],
                         capsys)
    assert rc == 0
    assert merged["top"] == whole["top"] and merged["configs_evaluated"] == whole["configs_evaluated"] == 3000
    assert merged["configs_feasible"] == whole["configs_feasible"]
    front = lambda d: json.loads((tmp_path / d / "pareto_front.json").read_text())  # noqa: E731
    assert front("m") == front("whole")
    # provenance: summary, CSV/JSON sidecar, PNG text chunk
    prov = whole["provenance"]
    assert prov["diffsys_version"] and prov["jax_version"] and prov["seed"] == 5 and prov["devices"]
    assert prov["space_fingerprint"] and "--seed" in prov["command_line"]
    side = json.loads((tmp_path / "whole" / "pareto_front.provenance.json").read_text())
    assert side["provenance"]["space_fingerprint"] == prov["space_fingerprint"] and side["columns"]["time_s"] == "s"
    from PIL import Image

    text = Image.open(tmp_path / "whole" / "pareto_front.png").text
    assert json.loads(text["Comment"])["space_fingerprint"] == prov["space_fingerprint"]
    assert "compile_seconds" in whole and "run_seconds" in whole
    # one naming: the summary's rows and the front files share the columns
    assert set(whole["top"][0]) >= set(front("whole")[0]) - {"time_s", "cost_usd"}
    # shards of another sweep are refused (a shard whose recorded command line has another seed)
    import shutil

    shutil.copytree(tmp_path / "s1", tmp_path / "x1")
    summary = json.loads((tmp_path / "x1" / "summary.json").read_text())
    cmd = summary["provenance"]["command_line"]
    cmd[cmd.index("--seed") + 1] = "6"
    (tmp_path / "x1" / "summary.json").write_text(json.dumps(summary))
    rc, _, err = _run(["merge", tmp_path / "s0", tmp_path / "x1", "--out", tmp_path / "m2"], capsys)
    assert rc == 2 and "--seed" in err and len(err.strip().splitlines()) == 1


def test_cli_refuses_to_overwrite_and_seed_changes_samples(tmp_path, capsys):
    out = tmp_path / "o"
    rc, a, _ = _run(ROOFLINE + ["--out", out], capsys)
    assert rc == 0
    rc, _, err = _run(ROOFLINE + ["--out", out], capsys)
    assert rc == 2 and "previous run" in err and "--force" in err and len(err.strip().splitlines()) == 1
    rc, b, _ = _run(ROOFLINE + ["--out", out, "--force", "--seed", "1"], capsys)
    assert rc == 0 and b["top"] != a["top"]
    assert _run(ROOFLINE + ["--out", tmp_path / "z", "--shard", "3/3"], capsys)[0] == 2


def test_cli_persistent_compilation_cache(tmp_path):
    """A second ``diffsys sweep`` in a new process loads its programs from the cache folder."""
    import json
    import subprocess
    import sys

    cache = tmp_path / "cache"
    argv = [sys.executable, "-m", "diffsys", *ROOFLINE[:-1], "--cache-dir", str(cache), "--force",
            "--out", str(tmp_path / "o")]
    env = {**os.environ, "JAX_PLATFORMS": "cpu"}
    runs = [json.loads(subprocess.run(argv, capture_output=True, text=True, env=env, timeout=300, check=True).stdout)
            for _ in range(2)]
    assert any(cache.iterdir())  # programs were written
    assert runs[1]["provenance"]["compilation_cache"] == str(cache)
    assert runs[1]["top"] == runs[0]["top"]
    assert runs[1]["compile_seconds"] < runs[0]["compile_seconds"]


def test_data_frame_errors(monkeypatch):
    import sys

    r = sweep(model, SP, "time_s", **KW)
    monkeypatch.setitem(sys.modules, "pandas", None)
    with pytest.raises(ImportError, match="needs pandas: pip install pandas"):
        r.to_pandas()
    monkeypatch.setitem(sys.modules, "xarray", None)
    with pytest.raises(ImportError, match="needs xarray"):
        r.to_xarray()
    monkeypatch.undo()
    samples = sweep(model, SP, "time_s", n_samples=300, key=jax.random.key(0), progress=False, chunk_size=256)
    with pytest.raises(ValueError, match="grid sweep"):
        pytest.importorskip("xarray") and samples.to_xarray()
    with pytest.raises(ValueError, match="'top' or 'pareto'"):
        pytest.importorskip("pandas") and r.to_pandas("front")
