"""One grouping: the same --group-by words, default and group names in the stages and the bundle."""

import numpy as np
import polars as pl
import pytest

from conftest import run_cli, shared_file
from servetrace import grouping
from servetrace.bundle.fit import bundle_from_requests
from servetrace.errors import ServetraceError
from servetrace.settings import Settings
from test_stages_support import canonical, run_stages


def test_vocabulary_is_columns_in_one_order_or_all():
    assert grouping.parse("model,service").name == "model,service"
    assert grouping.parse("service, model").name == "model,service"
    assert grouping.parse("session_id,client_id").columns == ("client_id", "session_id")
    assert grouping.parse("all").columns == ()
    for bad in ("colour", "model_service", "model,model", "all,model", ""):
        with pytest.raises(ServetraceError, match="--group-by"):
            grouping.parse(bad)


def test_default_choice():
    def choose(present, varies=()):
        return grouping.choose(None, lambda c: c in present, lambda c: c in varies).name

    assert choose({"client_id", "model", "service"}, {"model"}) == "client_id"
    assert choose({"model", "service", "session_id"}, {"service"}) == "model,service"
    assert choose({"model", "session_id"}, {"model"}) == "model"  # an all-null service is no part of a name
    assert choose({"model", "service", "session_id"}) == "session_id"
    assert choose(set()) == "all"


def _table(n=600, seed=0, **columns):
    rng = np.random.default_rng(seed)
    t = np.sort(rng.uniform(0, 3600, n))
    return canonical(t, input_tokens=rng.integers(1, 500, n), output_tokens=rng.integers(1, 500, n), **columns)


def _bundle(table, settings):
    return bundle_from_requests(pl.from_arrow(table), settings, {"path": "t"})


@pytest.mark.parametrize("group_by", [None, "model,service", "model", "client_id,session_id", "all"])
def test_stages_and_bundle_name_the_same_groups(tmp_path, group_by):
    n = 600
    rng = np.random.default_rng(1)
    sessions = {"session_id": list(rng.choice(["s1", "s2"], n))} if group_by == "client_id,session_id" else {}
    table = _table(n, model=list(rng.choice(["m1", "m2", None], n)), service=list(rng.choice(["api", "chat"], n)),
                   **sessions)
    settings = Settings(group_by=group_by)
    findings, tables = run_stages(tmp_path, table, settings)
    bundle = _bundle(table, settings)
    expected = group_by or "model,service"
    assert findings["clients"]["group_by"] == bundle["group_by"] == expected
    stage_groups = dict(zip(tables["clients"]["group_key"], tables["clients"]["requests"]))
    assert stage_groups == {c["id"]: c["requests"] for c in bundle["clients"]}
    model, service = table.column("model").to_pylist(), table.column("service").to_pylist()
    if expected == "model,service":  # counted independently: values joined by '|', nulls '(none)'
        names = [f"{m or '(none)'}|{s}" for m, s in zip(model, service)]
        assert stage_groups == {k: names.count(k) for k in set(names)}
    if expected == "client_id,session_id":
        assert set(stage_groups) == {"(none)|s1", "(none)|s2"}


def test_bad_group_by_fails_before_any_work(tmp_path):
    trace = shared_file("burstgpt", "BurstGPT_1_head400.csv")
    for cmd in (("characterize", trace, "--out", tmp_path / "c"), ("fit", tmp_path / "f")):
        proc = run_cli(*cmd, "--group-by", "model_service", "--quiet" if cmd[0] == "characterize" else "--json")
        assert proc.returncode == 2 and "'--group-by': 'model_service'" in proc.stderr and "Traceback" not in proc.stderr
    assert not (tmp_path / "c" / "requests.parquet").exists()
