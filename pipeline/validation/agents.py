"""Fidelity of agent workloads: calls per turn and per session, tool / think / subagent gaps,
context growth, output lengths per call kind (KS distances), the cached share of the input, the
share of calls made by subagents and of turns that spawn any, and the mean fan-out (absolute
differences); the gaps between session starts of one model (KS; none where the source starts
every session at one instant, as cc-traces do), the mix of models by call kind
(total variation distance) and, with block ids, the share of sessions whose first call starts with
a block another session's first call starts with (a shared system prompt; absolute difference). Read as the `agents` area reads them (sql/staging/stg_agent_calls.sql). Each check
carries its noise floors: `half_to_half`, the same number between two halves of the source's
sessions (split by a hash of the session id), and `seed_to_seed`, the largest over the pairs of
workloads generated from the bundle with the floor seeds (when a bundle with an agent model is given)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from servetrace import io
from servetrace.bundle.agents import GAP, MAIN, SUB
from servetrace.resources import statement
from servetrace.schema import HASH_IDS
from servetrace.settings import FidelitySettings
from servetrace.stages import sql

DISTRIBUTIONS = {
    "calls_per_turn": f"select count(*) as v, min(row_id) as row_id from stg_agent_calls where {MAIN} group by session_id, turn",
    "calls_per_session": "select count(*) as v, min(row_id) as row_id from stg_agent_calls "
                         "where session_id is not null group by session_id",
    "tool_gap": f"select {GAP} as v, row_id from stg_agent_calls where {MAIN} and gap_kind = 'tool'",
    "think_gap": f"select {GAP} as v, row_id from stg_agent_calls where {MAIN} and gap_kind = 'think'",
    "subagent_gap": f"select {GAP} as v, row_id from stg_agent_calls where {SUB} and step > 1",
    "context_growth": f"select growth_tokens as v, row_id from stg_agent_calls where {MAIN} and step > 1",
    "output_main": "select output_tokens as v, row_id from stg_agent_calls where call_kind <> 'subagent'",
    "output_subagent": f"select output_tokens as v, row_id from stg_agent_calls where {SUB}",
    "session_start_gap": statement("agents/session_start_gaps", main=MAIN),
}
SHARES = {
    "cached_share": "select sum(cached_tokens) / nullif(sum(input_tokens) filter (where cached_tokens is not null), 0) "
                    "from stg_agent_calls",
    "subagent_share": "select count(*) filter (where call_kind = 'subagent') / count(*) from stg_agent_calls",
    "spawn_share": f"select (select count(distinct (session_id, turn)) from stg_agent_calls where {SUB}) / "
                   f"nullif((select count(distinct (session_id, turn)) from stg_agent_calls where {MAIN}), 0)",
    "fanout_mean": f"select avg(n) from ({statement('agents/fanout', sub=SUB)})",
}


def profile(path: Path, sample: int = FidelitySettings().agent_sample) -> dict | None:
    """The agent numbers of a canonical trace (None without turns: not an agent trace); at most
    `sample` values per distribution, drawn by a hash of the row."""
    from servetrace.stages.agents import agent_columns

    from servetrace.bundle.agents import has_turns

    if not has_turns(path):
        return None
    with sql.connect(path) as con:
        if "turn" not in agent_columns(con):
            return None
        sql.run_sql(con, "stg_agent_calls")
        out = {}
        for name, query in DISTRIBUTIONS.items():
            n = con.sql(f"select count(v) from ({query})").fetchall()[0][0]
            keep = f"where v is not null and hash(row_id) % 1000003 < {int(1000003 * min(1.0, sample / max(n, 1)))}"
            v = con.sql(f"select v::double from ({query}) {keep}").fetchnumpy()
            out[name] = np.asarray(list(v.values())[0], dtype=float) if n else np.zeros(0)
        if not out["session_start_gap"].any():  # every session starts at one instant (cc-traces): untold
            out["session_start_gap"] = np.zeros(0)
        for name, query in SHARES.items():
            value = con.sql(query).fetchall()[0][0]
            out[name] = None if value is None else float(value)
        out["kind_models"] = {(k, m): n for k, m, n in con.sql(statement("agents/kind_models")).fetchall()}
        shared = None
        if HASH_IDS in con.sql("describe requests").pl()["column_name"].to_list():
            shared = con.sql(statement("agents/shared_first_blocks")).fetchall()[0][0]
        out["shared_prefix_share"] = None if shared is None else float(shared)
    return out


def _tv(a: dict, b: dict) -> float | None:
    """Total variation distance between two count tables (None when either is empty)."""
    na, nb = sum(a.values()), sum(b.values())
    if not na or not nb:
        return None
    return 0.5 * sum(abs(a.get(k, 0) / na - b.get(k, 0) / nb) for k in set(a) | set(b))


def _ks(a: np.ndarray, b: np.ndarray) -> float | None:
    from scipy import stats

    return float(stats.ks_2samp(a, b).statistic) if len(a) and len(b) else None


def compare(a: dict | None, b: dict | None) -> dict:
    """{metric: value}: KS distances of the distributions, absolute differences of the shares."""
    if a is None or b is None:
        return {}
    out = {f"ks_{k}": _ks(a[k], b[k]) for k in DISTRIBUTIONS}
    out.update({k: None if a[k] is None or b[k] is None else abs(a[k] - b[k]) for k in (*SHARES, "shared_prefix_share")})
    out["kind_model_tv"] = _tv(a["kind_models"], b["kind_models"])
    return out


def _halves(path: Path, work: Path) -> tuple[Path, Path]:
    """The source's sessions in two halves by a hash of the session id (calls without one by row)."""
    with sql.connect(path) as con:
        for i, name in enumerate(("half_a", "half_b")):
            out = str(work / f"{name}.parquet").replace("'", "''")
            con.execute(f"copy (select * exclude (file_row_number) from requests "
                        f"where hash(coalesce(session_id, file_row_number::varchar)) % 2 = {i} "
                        f"order by arrival_s, file_row_number) to '{out}' (format parquet)")
    return work / "half_a.parquet", work / "half_b.parquet"


def _seeds(bundle_path: Path | None, work: Path, t: FidelitySettings, tables: tuple | None = None) -> list[dict] | None:
    """The agent profiles of the seed workloads (`tables`, validate's: generated here when not
    given) where the bundle has an agent model."""
    if bundle_path is None:
        return None
    from servetrace.bundle import load_bundle
    from servetrace.validation.noise import seed_tables

    if not load_bundle(bundle_path).get("agents"):
        return None
    made = []
    for i, table in enumerate(tables if tables is not None else seed_tables(bundle_path, t.floor_seeds)):
        io.write_parquet(work / f"seed_{i}.parquet", table, {})
        made.append(profile(work / f"seed_{i}.parquet", t.agent_sample))
    return made


def agent_fidelity(source: Path, synthetic: Path, bundle_path: Path | None = None,
                   thresholds: FidelitySettings = FidelitySettings(), seeds: tuple | None = None,
                   work: Path | None = None) -> dict:
    """{"values": {metric: value}, "checks": {metric: {value, threshold, pass, noise_floor,
    within_noise}}}; empty when either trace is no agent trace. `seeds`: the floor seeds'
    workloads when the caller generated them already; `work`: where the halves and seed tables are
    written (validate's output directory; default beside the source)."""
    from servetrace.validation.noise import pair_max, with_floor

    src, syn = profile(Path(source), thresholds.agent_sample), profile(Path(synthetic), thresholds.agent_sample)
    values = compare(src, syn)
    if not values:
        return {}
    with io.temporary_dir(work or Path(source).parent, ".validate-agents.") as tmp:
        half = compare(*(profile(p, thresholds.agent_sample) for p in _halves(Path(source), Path(tmp))))
        profiles = _seeds(bundle_path, Path(tmp), thresholds, seeds)
        seed = pair_max(compare, profiles) if profiles else {}
    checks = {}
    for name, value in values.items():
        limit = thresholds.agent_ks if name.startswith("ks_") else thresholds.agent_share_abs
        if name == "fanout_mean":
            limit = thresholds.agent_fanout_abs
        if name == "kind_model_tv":
            limit = thresholds.agent_model_tv
        check = {"value": value, "threshold": limit, "pass": None if value is None else bool(value <= limit)}
        checks[name] = with_floor(check, {"seed_to_seed": seed.get(name), "half_to_half": half.get(name)})
    return {"values": values, "checks": checks,
            "noise_floor_basis": {"half_to_half": "the source's sessions split in two by a hash of the session id",
                                  "seed_to_seed": "workloads generated from the bundle with seeds "
                                                  f"{', '.join(map(str, thresholds.floor_seeds))}, "
                                                  "the largest over their pairs"}}
