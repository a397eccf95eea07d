"""``diffsys nccl-tests`` and the nccl-tests reader/writer."""

import json

import numpy as np
import pytest

from diffsys.cli import main
from diffsys.io import nccl_sizes, parse_size, read_nccl_tests
from diffsys.topologies import system_preset

NCCL_TESTS_SAMPLE = """# nThread 1 nGpus 8 minBytes 8 maxBytes 134217728 step: 2(factor) warmup iters: 5 iters: 20
#
#                                                              out-of-place                       in-place
#       size         count      type   redop    root     time   algbw   busbw #wrong     time   algbw   busbw #wrong
#        (B)    (elements)                               (us)  (GB/s)  (GB/s)            (us)  (GB/s)  (GB/s)
     1048576        262144     float     sum      -1    41.23   25.43   44.51      0    40.89   25.64   44.88      0
   134217728      33554432     float     sum      -1   701.5  191.33  334.83      0   700.9  191.49  335.11      0
# Out of bounds values : 0 OK
# Avg bus bandwidth    : 189.8
"""


def test_size_flags_follow_nccl_tests():
    assert parse_size("1M") == 2**20 and parse_size("8G") == 8 * 2**30 and parse_size("512") == 512
    assert parse_size("2k") == 2048
    assert nccl_sizes("1M", "8G", 2) == [2**k for k in range(20, 34)]
    assert nccl_sizes("1K", "4K", step_bytes="1K") == [1024, 2048, 3072, 4096]
    with pytest.raises(ValueError, match="suffix"):
        parse_size("1X")
    with pytest.raises(ValueError, match="maxbytes"):
        nccl_sizes("8M", "1M")


def test_reader_parses_nccl_tests_text():
    t = read_nccl_tests(NCCL_TESTS_SAMPLE)
    np.testing.assert_array_equal(t.size_B, [1048576, 134217728])
    np.testing.assert_allclose(t.time_s, [41.23e-6, 701.5e-6])
    np.testing.assert_allclose(t.busbw_Bps, [44.51e9, 334.83e9])
    np.testing.assert_allclose(t.inplace_busbw_Bps, [44.88e9, 335.11e9])
    with pytest.raises(ValueError, match="no nccl-tests rows"):
        read_nccl_tests("# nothing here\n# at all\n")


def test_cli_table_round_trips_through_the_reader(capsys):
    assert main(["nccl-tests", "--op", "all_reduce", "-b", "1M", "-e", "1G", "-f", "2", "-g", "8",
                 "--system", "dgx_a100"]) == 0
    out = capsys.readouterr().out
    t = read_nccl_tests(out)
    assert list(t.size_B) == [2**k for k in range(20, 31)]
    np.testing.assert_array_equal(t.count, t.size_B / 4)
    model = system_preset("dgx_a100").collective_time("all_reduce", t.size_B)
    np.testing.assert_allclose(t.busbw_Bps, np.asarray(model.busbw_Bps), rtol=5e-3)
    np.testing.assert_allclose(t.busbw_Bps, t.algbw_Bps * 2 * 7 / 8, rtol=5e-3)
    assert "Avg bus bandwidth" in out


def test_cli_multi_node_and_counts(capsys):
    assert main(["nccl-tests", "--op", "all_gather", "-b", "1M", "-e", "4M", "-g", "8", "--nodes", "2",
                 "--system", "hgx_h100", "-d", "bfloat16"]) == 0
    t = read_nccl_tests(capsys.readouterr().out)
    np.testing.assert_array_equal(t.count, t.size_B / (2 * 16))  # all-gather: per-rank element count
    np.testing.assert_allclose(t.busbw_Bps, t.algbw_Bps * 15 / 16, rtol=5e-3)


def test_cli_system_from_json(tmp_path, capsys):
    path = tmp_path / "box.json"
    path.write_text(json.dumps({"name": "box", "accelerator": "h100", "dims": [
        {"kind": "switch", "size": 4, "bandwidth_Bps": 100e9, "latency_s": 2e-6}]}))
    assert main(["nccl-tests", "--op", "broadcast", "-b", "64M", "-e", "64M", "--system", str(path)]) == 0
    t = read_nccl_tests(capsys.readouterr().out)
    assert t.busbw_Bps[0] == pytest.approx(t.algbw_Bps[0], rel=1e-3)  # broadcast: busbw = algbw
    assert t.busbw_Bps[0] < 100e9
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"dims": [{"kind": "switch", "size": 4, "bandwith_Bps": 1e9}]}))
    assert main(["nccl-tests", "--system", str(bad)]) == 2
    assert "bandwith_Bps" in capsys.readouterr().err


def test_cli_bad_input_is_one_clear_line(capsys):
    assert main(["nccl-tests", "--system", "dgx_z"]) == 2
    assert "unknown system preset" in capsys.readouterr().err
    assert main(["nccl-tests", "-g", "0"]) == 2
    assert "ngpus" in capsys.readouterr().err
    assert main(["nccl-tests", "-b", "1Q"]) == 2
    assert "suffix" in capsys.readouterr().err
