"""Gap statistics stream over batches: any batch size gives the numbers of one pass over all rows."""

import numpy as np
import polars as pl
import pytest

from servetrace.rows import read
from test_stages_support import canonical, run_stages


@pytest.fixture(scope="module")
def trace():
    rng = np.random.default_rng(21)
    n = 6000
    t = np.floor(np.cumsum(rng.gamma(0.4, 2.5, n)))  # 1 s grid: ties, de-rounding
    clients = rng.choice(["a", "b", "c", "d"], n, p=[0.5, 0.3, 0.15, 0.05]).tolist()
    inp = rng.integers(1, 50, n)
    out = rng.integers(1, 20, n)
    inp[100:110], out[100:110], t[100:110] = 7, 3, t[100]  # ten copies of one row: nine duplicates
    clients[100:110] = ["a"] * 10
    return t, clients, canonical(t, client_id=clients, input_tokens=inp, output_tokens=out)


def run(tmp_path, table, batch_rows, monkeypatch):
    monkeypatch.setattr(read, "BATCH_ROWS", batch_rows)
    return run_stages(tmp_path, table)


def test_batches_give_the_one_pass_numbers(tmp_path, trace, monkeypatch):
    _, _, table = trace
    one, one_tables = run(tmp_path / "one", table, 1 << 20, monkeypatch)
    for batch_rows in (97, 1000):
        many, many_tables = run(tmp_path / str(batch_rows), table, batch_rows, monkeypatch)
        for area in ("arrivals", "quality", "clients"):
            a, b = dict(one[area]), dict(many[area])
            assert a.pop("statement") == b.pop("statement")
            assert b == pytest.approx(a, rel=1e-9) if _flat(a) else a == b
        for name in ("window_rates", "quality_gaps", "arrivals_by_group", "clients", "window_iat_fits"):
            x, y = one_tables[name], many_tables[name]
            assert x.columns == y.columns and x.height == y.height, name
            for col in x.columns:
                if x[col].dtype.is_float():
                    assert np.allclose(x[col].to_numpy(), y[col].to_numpy(), rtol=1e-9, equal_nan=True), (name, col)
                else:
                    assert x[col].to_list() == y[col].to_list(), (name, col)


def _flat(d):
    return all(isinstance(v, (int, float)) or v is None for v in d.values())


def test_group_gaps_duplicates_and_longest_match_numpy(tmp_path, trace, monkeypatch):
    t, clients, table = trace
    findings, tables = run(tmp_path, table, 500, monkeypatch)
    rows = pl.from_arrow(table)
    assert findings["quality"]["duplicate_rows"] == rows.height - rows.n_unique() >= 9
    c = np.array(clients)
    got = {r["level"]: r for r in tables["arrivals_by_group"].filter(pl.col("dimension") == "group").iter_rows(named=True)}
    for name in "abcd":
        g = np.diff(t[c == name])
        assert got[name]["iat_mean_s"] == pytest.approx(g.mean(), rel=1e-12)
        assert got[name]["iat_cv"] == pytest.approx(g.std() / g.mean(), rel=1e-9)
    gap = np.diff(t)
    order = np.lexsort((np.arange(len(gap)), -gap))[:10]
    assert tables["quality_gaps"]["gap_s"].to_list() == gap[order].tolist()
    assert tables["quality_gaps"]["gap_start_s"].to_list() == t[order].tolist()
    assert findings["quality"]["max_gap_s"] == gap.max()
    assert findings["quality"]["tie_share"] == pytest.approx((gap == 0).mean(), rel=1e-9)


def test_duplicates_on_a_fine_clock_with_ties_across_batches(tmp_path, monkeypatch):
    """Only rows sharing an arrival with a neighbour are compared for repeats: on a ms clock with
    some ties, copies inside tie groups (some spanning batch boundaries, some batches one tie group
    throughout) are counted as polars counts them over every column, whatever the batch size."""
    rng = np.random.default_rng(5)
    n = 3000
    t = np.cumsum(np.where(rng.uniform(size=n) < 0.3, 0.0, np.round(rng.exponential(0.05, n), 3) + 0.001))
    t[1000:1060] = t[1000]  # a tie group longer than a batch of 7 or 50
    inp, out = rng.integers(1, 4, n), rng.integers(1, 3, n)  # few values: tied rows often repeat
    table = canonical(t, input_tokens=inp, output_tokens=out)
    rows = pl.from_arrow(table)
    expected = rows.height - rows.n_unique()
    assert expected >= 30
    for batch_rows in (7, 50, 1 << 20):
        findings, _ = run(tmp_path / str(batch_rows), table, batch_rows, monkeypatch)
        assert findings["quality"]["duplicate_rows"] == expected, batch_rows


def test_repeats_keyed_by_arrival_block_count_as_a_whole_sort():
    """`_repeats` sorts (arrival block, high bits of the hash) keys, and sorts the hashes whole
    where a key holds unequal hashes: the count equals len - distinct hashes either way, on hashes
    whose high bits differ (the keyed path) and on hashes one arrival's rows share all but the low
    bits of (the whole sort), with blocks of 1 to ~50 rows and all rows in one block."""
    from servetrace.stages.gaps import GapStream

    def mix(x):  # a bijection of uint64 (splitmix64's finalizer): equal inputs, equal outputs
        x = (x ^ (x >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        x = (x ^ (x >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        return x ^ (x >> np.uint64(31))

    rng = np.random.default_rng(3)
    stream = GapStream({}, 0.0, 1, 60.0, 0.0, 0.1, 10, 5, 0)
    for trial in range(300):
        m = int(rng.integers(2, 4000))
        at = np.sort(rng.integers(0, max(1, m // int(rng.integers(1, 50))), m)).astype(np.uint64)
        small = rng.integers(0, int(rng.integers(1, 9)), m).astype(np.uint64)  # few values: repeats
        with np.errstate(over="ignore"):
            h = mix(at * np.uint64(16) + small) if trial % 2 else mix(at) + small  # even: low bits differ only
        tied = rng.uniform(size=m) < 0.9
        expected = int(tied.sum()) - len(np.unique(h[tied]))
        got = stream._repeats(h, tied, at.astype(np.float64))
        assert got == expected == stream._repeats(h, tied), trial


def test_the_derounded_order_is_numpys_stable_argsort():
    """`_stable_order` (the bits of non-negative doubles sorted as integers) gives np.argsort's stable
    order: ties in file order, on grids, with negatives, -0.0, infinity and NaN (sorted as doubles)."""
    from servetrace.stages.gaps import _stable_order

    rng = np.random.default_rng(1)
    for trial in range(300):
        n = int(rng.integers(1, 3000))
        t = np.sort(np.floor(rng.uniform(0, n / 50, n)) * rng.choice([1.0, 0.001, 1e6]))
        x = t + rng.choice([1.0, 0.0, 1e-3]) * rng.uniform(size=n) * (rng.uniform(size=n) < rng.uniform())
        if trial % 3 == 0:
            x = np.round(x, 1)  # many ties
        if trial % 7 == 0:
            x[rng.integers(0, n, 5)] *= -1.0
        if trial % 11 == 0:
            x[0] = -0.0
        if trial % 13 == 0:
            x[-1] = np.inf
        if trial % 17 == 0:
            x[rng.integers(0, n)] = np.nan
        assert np.array_equal(_stable_order(x), np.argsort(x, kind="stable")), trial
