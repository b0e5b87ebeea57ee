"""Generation streams block by block: bounded blocks, the process carried across them, the same
bytes however the writer batches rows, counts over the source's covered span, sizes refused up
front, and the two kinds of scaling."""

from __future__ import annotations

import numpy as np
import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from servetrace.bundle import save_bundle, validate_bundle
from servetrace.bundle.coverage import expected_requests
from servetrace.errors import ServetraceError
from servetrace.exports.knobs import knob_card
from servetrace.generation import GenerateOptions
from servetrace.generation.compose import generate_table, prepare
from servetrace.generation.run import generate_file
from servetrace.generation.write import row_groups, write_generated
from servetrace.stats import fidelity as m
from test_generate import W, bundle, client, two_clients, window_counts


def partial_source(seed: int = 5) -> tuple[np.ndarray, dict]:
    """Poisson arrivals covering [350, 3250) of six 600 s windows, and the bundle fitted on them."""
    from servetrace.bundle.fit import bundle_from_requests
    from servetrace.generation.table import canonical_table
    from servetrace.settings import Settings

    rng = np.random.default_rng(seed)
    rate = np.repeat([4.7, 5.0, 5.6, 7.4, 6.0, 1.6], W)
    sec = np.arange(350, 3250)
    counts = rng.poisson(rate[sec])
    t = np.sort(np.repeat(sec, counts) + rng.random(counts.sum()))
    src = pl.from_arrow(canonical_table({"arrival_s": t, "client_id": ["a"] * t.size,
                                         "input_tokens": np.full(t.size, 9), "output_tokens": np.full(t.size, 3)}))
    return t, validate_bundle(bundle_from_requests(src, Settings(), {"path": "p", "sha256": None, "rows": None,
                                                                     "format": "planted"}))


def test_expected_count_over_the_covered_span_is_the_sources():
    """The cut first and last windows count their covered seconds only: generation, the knob card
    and the bundle's own rates all give back exactly the source's rows (the source: 16,937)."""
    t, b = partial_source()
    assert expected_requests(b) == pytest.approx(t.size, rel=1e-12)
    assert knob_card(b)["requests"] == t.size
    gen = prepare(b, GenerateOptions(seed=1))
    assert gen.summary["expected_requests"] == pytest.approx(t.size, rel=1e-12)
    assert gen.summary["source_span"]["start_s"] == t.min() and gen.summary["source_span"]["end_s"] == t.max()
    counts = [generate_table(b, GenerateOptions(seed=s))[0].num_rows for s in range(5)]
    assert np.median(counts) == pytest.approx(t.size, abs=3 * np.sqrt(t.size))  # Poisson: sd sqrt(n)


def blocks_of(b: dict, block_rows: int, **opts) -> list[pa.Table]:
    return list(prepare(b, GenerateOptions(**opts), block_rows=block_rows).blocks())


def test_blocks_are_bounded_sorted_and_carry_the_process():
    """With blocks of ~4,000 requests, a 72,000-request Gamma CV 3 client comes in many blocks, each
    sorted and after the last; the process runs on across them (CV 3, counts vary as CV^2)."""
    windows = 6
    b = bundle([client("a", 20.0, windows, cv=3.0)], windows)
    tables = blocks_of(b, 4000, seed=2)
    assert len(tables) > 15
    assert all(t.num_rows < 3 * 4000 for t in tables)
    ends = [(t["arrival_s"][0].as_py(), t["arrival_s"][-1].as_py()) for t in tables]
    assert all(a2 >= b1 for (_, b1), (a2, _) in zip(ends, ends[1:]))
    t = pa.concat_tables(tables)["arrival_s"].to_numpy()
    assert (np.diff(t) >= 0).all()
    assert m.iat_cv(t) == pytest.approx(3.0, rel=0.07)
    assert len(t) == pytest.approx(72_000, rel=0.05)
    per_minute = np.bincount((t // 60).astype(int), minlength=60)[:60]
    assert per_minute.var() / per_minute.mean() == pytest.approx(9.0, rel=0.45)


def test_same_bytes_whatever_the_writer_batching(tmp_path):
    """Rows re-cut into fixed row groups: one table, many small ones or the streamed blocks give the
    same file; a different seed does not."""
    b = two_clients()
    tables = blocks_of(b, 3000, seed=7)
    whole = pa.concat_tables(tables)
    pieces = [whole.slice(i, 777) for i in range(0, whole.num_rows, 777)]
    meta = {"servetrace.format": "synthetic"}
    for name, parts in (("blocks", tables), ("whole", [whole]), ("pieces", pieces)):
        write_generated(iter(parts), tmp_path / f"{name}.parquet", "parquet", meta)
        write_generated(iter(parts), tmp_path / f"{name}.csv", "csv", meta)
    for ext in ("parquet", "csv"):
        got = {(tmp_path / f"{n}.{ext}").read_bytes() for n in ("blocks", "whole", "pieces")}
        assert len(got) == 1
    assert pq.read_table(tmp_path / "whole.parquet").equals(whole.replace_schema_metadata(
        pq.read_table(tmp_path / "whole.parquet").schema.metadata))
    sizes = [g.num_rows for g in row_groups(pieces, 1000)]
    assert sizes == [1000] * (whole.num_rows // 1000) + ([whole.num_rows % 1000] if whole.num_rows % 1000 else [])
    other = pa.concat_tables(blocks_of(b, 3000, seed=8))
    assert not other["arrival_s"].equals(whole["arrival_s"])


def test_a_client_alone_gives_the_same_arrivals_in_blocks():
    b = two_clients()
    both = pl.from_arrow(pa.concat_tables(blocks_of(b, 2000, seed=3)))
    alone = pl.from_arrow(pa.concat_tables(blocks_of(b, 2000, seed=3, clients="small")))
    np.testing.assert_array_equal(alone["arrival_s"], both.filter(pl.col("client_id") == "small")["arrival_s"])


def test_too_large_a_request_is_refused_up_front(tmp_path):
    save_bundle(tmp_path / "bundle.json", two_clients())
    out = tmp_path / "big.parquet"
    with pytest.raises(ServetraceError, match=r"about 3\.6e\+15 requests; at most"):
        generate_file(tmp_path / "bundle.json", out, GenerateOptions(rate_scale=1e11))
    with pytest.raises(ServetraceError, match="spans 1.67e\\+09 windows"):  # few requests, too many windows
        generate_file(tmp_path / "bundle.json", out, GenerateOptions(duration_s=1e12, rate_scale=1e-6))
    import shutil
    from collections import namedtuple

    usage = namedtuple("usage", "total used free")
    with pytest.MonkeyPatch.context() as mp:  # 3.6e5 requests x 12 B against a disk with 1 MB free
        mp.setattr(shutil, "disk_usage", lambda where: usage(2**30, 2**30 - 2**20, 2**20))
        with pytest.raises(ServetraceError, match="GiB free"):
            generate_file(tmp_path / "bundle.json", out, GenerateOptions(rate_scale=10))
    assert list(tmp_path.iterdir()) == [tmp_path / "bundle.json"]


def test_rate_scale_keeps_burstiness_and_time_scale_stretches_it():
    """--rate-scale 4: four times the requests, the same inter-arrival CV per client. --time-scale
    0.25: the same requests in a quarter of the time, so each gap is a quarter as long and a 1 s
    bin holds what 4 s held: the IDC at 1 s becomes the source's IDC at 4 s."""
    windows = 6
    b = bundle([client("a", 5.0, windows, cv=3.0)], windows)
    base = generate_table(b, GenerateOptions(seed=4))[0]["arrival_s"].to_numpy()
    more = generate_table(b, GenerateOptions(seed=4, rate_scale=4.0))[0]["arrival_s"].to_numpy()
    assert len(more) == pytest.approx(4 * len(base), rel=0.06)
    assert m.iat_cv(more) == pytest.approx(m.iat_cv(base), rel=0.08)
    fast, summary = generate_table(b, GenerateOptions(seed=4, time_scale=0.25))
    t = fast["arrival_s"].to_numpy()
    np.testing.assert_allclose(t, base * 0.25)  # the same requests: start 0, seconds x 0.25
    assert summary["duration_s"] == pytest.approx(windows * W / 4)
    assert m.idc(t, 1.0) == pytest.approx(m.idc(base, 4.0), rel=1e-6)
    with pytest.raises(ServetraceError, match="--time-scale"):
        GenerateOptions(time_scale=0.0)


def test_window_counts_of_the_streamed_generation_match_the_rates():
    rate = np.array([2.0, 0.0, 8.0, 1.0])
    t = pa.concat_tables(blocks_of(bundle([client("a", rate, 4)], 4), 1500, seed=1))["arrival_s"].to_numpy()
    counts = window_counts(t, 4)
    assert counts[1] == 0
    np.testing.assert_allclose(counts[[0, 2, 3]], rate[[0, 2, 3]] * W, rtol=0.08)


def test_cli_generate_with_time_scale_and_too_large_a_rate(tmp_path):
    """The README's forms: `servetrace generate BUNDLE --out FILE --time-scale X`, and a refusal
    as one line with a non-zero exit."""
    import subprocess
    import sys

    save_bundle(tmp_path / "bundle.json", two_clients())
    cmd = [sys.executable, "-m", "servetrace", "generate", str(tmp_path / "bundle.json")]
    done = subprocess.run([*cmd, "--out", str(tmp_path / "fast.parquet"), "--time-scale", "0.5", "--seed", "3"],
                          capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    t = pq.read_table(tmp_path / "fast.parquet")["arrival_s"].to_numpy()
    base = generate_table(two_clients(), GenerateOptions(seed=3))[0]["arrival_s"].to_numpy()
    np.testing.assert_allclose(t, base * 0.5)
    big = subprocess.run([*cmd, "--out", str(tmp_path / "big.parquet"), "--rate-scale", "1e8"],
                         capture_output=True, text=True)
    assert big.returncode != 0 and "Traceback" not in big.stderr
    assert "requests; at most" in big.stderr and len(big.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "big.parquet").exists()
