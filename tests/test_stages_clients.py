"""Clients: planted shares, Gini and the grouping fallback."""

import numpy as np
import pytest

from servetrace.errors import ServetraceError
from servetrace.settings import Settings
from servetrace.stages.clients import gini, lorenz
from test_stages_support import canonical, run_stages

PLANTED = {"a": 5000, "b": 3000, "c": 1500, "d": 400, "e": 100}


@pytest.fixture(scope="module")
def planted(tmp_path_factory):
    rng = np.random.default_rng(0)
    ids = [c for c, n in PLANTED.items() for _ in range(n)]
    t = np.sort(rng.uniform(0, 36_000, len(ids)))
    rng.shuffle(ids)
    table = canonical(t, client_id=ids, input_tokens=np.full(len(ids), 10), output_tokens=np.full(len(ids), 5))
    return run_stages(tmp_path_factory.mktemp("clients"), table)


def test_planted_shares_are_recovered(planted):
    findings, tables = planted
    c = findings["clients"]
    assert c["group_by"] == "client_id" and c["count"] == 5
    assert c["top_share"]["1"] == pytest.approx(0.5)
    assert c["top_share"]["5"] == pytest.approx(1.0)
    counts = np.array(list(PLANTED.values()), dtype=float)
    mean_abs_diff = np.abs(counts[:, None] - counts[None, :]).sum() / (2 * len(counts) ** 2 * counts.mean())
    assert c["gini"] == pytest.approx(mean_abs_diff, rel=1e-9)
    shares = dict(zip(tables["clients"]["group_key"], tables["clients"]["share"]))
    assert shares == pytest.approx({k: v / 10_000 for k, v in PLANTED.items()})


def test_lorenz_runs_from_zero_to_one():
    curve = lorenz(np.array([1, 1, 8]))
    assert curve["request_share"].to_list() == pytest.approx([0, 0.1, 0.2, 1.0])
    assert gini(np.array([5, 5, 5])) == pytest.approx(0.0)


def test_without_client_ids_groups_by_model_and_service(tmp_path):
    t = np.arange(200.0)
    table = canonical(t, model=["m1", "m2"] * 100, service=["api"] * 200, input_tokens=np.ones(200), output_tokens=np.ones(200))
    findings, _ = run_stages(tmp_path, table)
    assert findings["clients"]["group_by"] == "model,service"
    assert "no client ids" in findings["clients"]["statement"]


def test_unknown_group_by_is_a_clear_error(tmp_path):
    with pytest.raises(ServetraceError, match="--group-by"):
        run_stages(tmp_path, canonical(np.arange(10.0)), Settings(group_by="colour"))
