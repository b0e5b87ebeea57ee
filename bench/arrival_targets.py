"""The arrival targets over traces: characterize each, generate it with several seeds, validate
each workload against the source (with the bundle, so every arrival check carries its seed-to-seed
and half-to-half noise floors) and print one markdown row per trace: the median over seeds of
each check's value, the floors beside it, and the request count's error; then the servers each
workload needs (`servetrace provision`, its default serving model): the source, ours per seed and
the naive workload per seed.

    python -m bench.arrival_targets TRACE [TRACE ...] [--planted] [--seeds 5] [--work DIR] [--target-s S]

`--target-s` sets the provisioning's latency target (p99 TTFT, default 2 s): a trace whose single
requests already take longer than 2 s (Mooncake's prompts) has no fleet at the default.

`--planted` adds a trace made here with known burstiness: one client, window rates swinging
2 -> 6 req/s over 24 windows of 600 s, modulated inside the windows by log-Gaussian components
of variance 0.5 / 0.3 at time scales 1 / 8 s (bundle/modulation.py's model)."""

from __future__ import annotations

import argparse
import json
import shutil
from pathlib import Path

import numpy as np

CHECKS = ("iat_cv", "idc_1", "idc_10", "idc_60", "idc_600", "rate_mape")
TARGETS = {"iat_cv": 0.10, "idc_1": 0.20, "idc_10": 0.20, "idc_60": 0.20, "idc_600": 0.20, "rate_mape": 0.05}
COUNT_TARGET = 0.05
PLANTED_SIGMA2 = (0.5, 0.3, 0.0, 0.0)


def planted_trace(path: Path, seed: int = 3) -> Path:
    """A generic CSV (timestamp, client_id, input_tokens, output_tokens) with known burstiness."""
    import polars as pl

    from servetrace.generation.modulation import Modulation
    from servetrace.settings import ModulationSettings

    BIN_S, THETAS = ModulationSettings().bin_s, ModulationSettings().theta_s

    window, rates = 600.0, 4.0 + 2.0 * np.sin(np.arange(24) / 24 * 2 * np.pi)
    mod = Modulation({"theta_s": list(THETAS), "sigma2": list(PLANTED_SIGMA2), "bin_s": BIN_S}, seed, 0.0, window)
    t, u = mod.knots(0.0, len(rates) * window, 0)
    rng = np.random.default_rng(seed + 1000)
    n = rng.poisson(rates * window)
    points = np.sort(np.repeat(np.arange(len(rates)) * window, n) + rng.uniform(0, window, n.sum()))
    arrivals = np.interp(points, u, t)
    pl.DataFrame({"timestamp": np.round(arrivals, 3), "client_id": ["planted"] * len(arrivals),
                  "input_tokens": rng.integers(10, 2000, len(arrivals)),
                  "output_tokens": rng.integers(1, 500, len(arrivals))}).write_csv(path)
    return path


def measure(trace: Path, work: Path, seeds: list[int], target_s: float | None = None) -> dict:
    import servetrace
    from servetrace.provision import ServingModel, provision_traces

    run = work / trace.stem
    servetrace.characterize(trace, run)
    bundle = json.loads((run / "bundle.json").read_text())
    rows = bundle["source"].get("rows") or sum(c["requests"] for c in bundle["clients"])
    per_seed = []
    for seed in seeds:
        syn = work / f"{trace.stem}.{seed}.parquet"
        gen = servetrace.generate(run, syn, seed=seed)
        f = servetrace.validate(run, syn, work / f"{trace.stem}.{seed}.val", page=False, bundle=run)
        serving = ServingModel(seed=seed, **({"target_s": target_s} if target_s else {}))
        cap = provision_traces(run, work / f"{trace.stem}.{seed}.prov", synthetic=syn, model=serving,
                               seed=seed, page=False)["capacity"]
        per_seed.append({"count": abs(gen["requests"] - rows) / rows, "requests": gen["requests"], "capacity": cap,
                         **{k: f["checks"][k] for k in CHECKS}})
        syn.unlink(missing_ok=True)
    out = {"trace": trace.name, "rows": rows, "target_s": target_s or ServingModel().target_s,
           "model": (bundle.get("arrival_model") or {}).get("chosen", "renewal"),
           "count": float(np.median([s["count"] for s in per_seed])),
           # the count's own seed-to-seed floor: median over pairs of seeds of |n_i - n_j| / rows
           "count_seed": float(np.median([abs(a["requests"] - b["requests"]) / rows for i, a in enumerate(per_seed)
                                          for b in per_seed[i + 1:]])) if len(per_seed) > 1 else None,
           "capacity": {k: [s["capacity"][k] for s in per_seed] for k in ("source", "ours", "naive")}}
    for k in CHECKS:
        values = [s[k]["value"] for s in per_seed if s[k]["value"] is not None]
        floor = per_seed[0][k].get("noise_floor") or {}
        out[k] = {"value": float(np.median(values)) if values else None, "seed": floor.get("seed_to_seed"),
                  "half": floor.get("half_to_half")}
    return out


def _pct(v: float | None) -> str:
    return "–" if v is None else f"{100 * v:.1f}"


def cell(c: dict, target: float) -> str:
    v = c["value"]
    mark = "" if v is None else (" ✓" if v <= target else (" ~" if v <= max(x for x in (c["seed"], c["half"], 0) if x is not None) else " ✗"))
    return f"{_pct(v)}{mark} ({_pct(c['seed'])} / {_pct(c['half'])})"


def _count(r: dict) -> str:
    floor = r.get("count_seed")
    mark = " ✓" if r["count"] <= COUNT_TARGET else (" ~" if floor is not None and r["count"] <= floor else " ✗")
    return f"{_pct(r['count'])}{mark}" + (f" ({_pct(floor)})" if floor is not None else "")


def table(rows: list[dict], seeds: int) -> str:
    head = ("| trace | rows | arrival model | IAT CV | IDC 1 s | IDC 10 s | IDC 60 s | IDC 600 s | rate MAPE | count |\n"
            "|---|---|---|---|---|---|---|---|---|---|\n")
    body = "".join(
        f"| {r['trace']} | {r['rows']:,} | {r['model']} | " + " | ".join(cell(r[k], TARGETS[k]) for k in CHECKS)
        + f" | {_count(r)} |\n" for r in rows)
    return (head + body + f"\nError in %, median of {seeds} seeds (floors: seed to seed / half to half, in %); "
            "✓ within the target, ~ missed but within the larger noise floor, ✗ missed beyond noise.\n")


def provisioning(rows: list[dict]) -> str:
    """Servers for p99 TTFT <= 2 s (provision's default serving model): the source, ours per seed, naive per seed."""
    head = ("| trace | p99 TTFT target | source | ours (per seed) | ours vs source | naive (per seed) | naive vs source |\n"
            "|---|---|---|---|---|---|---|\n")

    def err(caps: list, src) -> str:
        e = sorted((c - src) / src for c in caps if c is not None and src)
        return "–" if not e else f"{100 * np.median(e):+.0f} % ({100 * e[0]:+.0f} to {100 * e[-1]:+.0f})"

    body = "".join(f"| {r['trace']} | {r.get('target_s', 2.0):g} s | {r['capacity']['source'][0]} | "
                   f"{' / '.join(map(str, r['capacity']['ours']))} | "
                   f"{err(r['capacity']['ours'], r['capacity']['source'][0])} | "
                   f"{' / '.join(map(str, r['capacity']['naive']))} | {err(r['capacity']['naive'], r['capacity']['source'][0])} |\n"
                   for r in rows)
    return head + body


def main(argv: list[str] | None = None) -> str:
    ap = argparse.ArgumentParser(prog="python -m bench.arrival_targets", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("traces", nargs="*", type=Path)
    ap.add_argument("--planted", action="store_true", help="add the trace with known burstiness")
    ap.add_argument("--seeds", type=int, default=5)
    ap.add_argument("--work", type=Path, default=Path("data/arrival_targets"))
    ap.add_argument("--target-s", type=float, default=None, help="provisioning: p99 TTFT target in seconds (default 2)")
    args = ap.parse_args(argv)
    args.work.mkdir(parents=True, exist_ok=True)
    traces = list(args.traces) + ([planted_trace(args.work / "planted_cox.csv")] if args.planted else [])
    rows = [measure(t, args.work, list(range(1, args.seeds + 1)), args.target_s) for t in traces]
    text = table(rows, args.seeds) + "\n" + provisioning(rows)
    (args.work / "rows.json").write_text(json.dumps(rows, indent=1))
    for t in traces:
        shutil.rmtree(args.work / t.stem, ignore_errors=True)
    print(text)
    return text


if __name__ == "__main__":
    main()
