"""Knob card: the bundle's rate, burstiness and lengths translated into each benchmark tool's flags,
with the direction of every speed knob and what each tool cannot express (knobs.json + knobs.md)."""

from __future__ import annotations

import math
import shlex
from pathlib import Path

import numpy as np

from servetrace.bundle.coverage import covered_seconds, covered_seconds_at, covered_span, expected_requests
from servetrace.exports.inference_perf import inference_perf_config, shared_prefix
from servetrace.exports.mooncake import replay_options
from servetrace.exports.synthetic_lengths import match, shortfall
from servetrace.exports.tools import CHECKED_AGAINST, RELEASES, SERVER
from servetrace.stats.pmf import pooled_pmf
from servetrace.io import atomic_dir, dumps_json
from servetrace.stats.pmf import pooled_pmf

TOKEN_FIELDS = ("input_tokens", "output_tokens")
PROGRAMS = {"vllm": "vllm bench serve", "sglang": "python -m sglang.bench_serving --backend sglang",
            "aiperf": "aiperf profile", "guidellm": "guidellm run",
            "inference-perf": "inference-perf --config_file CONFIG.yml",
            "vidur": "python -m vidur.main"}


def _dataset_weights(client: dict, bundle: dict) -> np.ndarray:
    """Requests per dataset window: each rate window (its covered seconds) counts toward the latest
    dataset window at or before it."""
    starts = np.asarray(client["lengths"]["window_start_s"], dtype=float)
    w = client["windows"]
    owner = np.searchsorted(starts, np.asarray(w["start_s"], dtype=float), side="right") - 1
    req = np.asarray(w["rate_rps"], dtype=float) * covered_seconds_at(bundle, w["start_s"])
    ok = owner >= 0
    return np.bincount(owner[ok], weights=req[ok], minlength=starts.size)


def length_mixture(bundle: dict, field: str) -> tuple[np.ndarray, np.ndarray]:
    """The whole workload's PMF of `field`: clients' window PMFs weighted by their requests."""
    pmfs, weights = [], []
    for c in bundle["clients"]:
        per = c["lengths"]["fields"].get(field) or []
        if not per:
            continue
        w = _dataset_weights(c, bundle)
        w = w if w.sum() > 0 else np.ones(len(per))
        pmfs += per
        weights.append(w / w.sum() * c["share"])
    if not pmfs:
        return np.zeros(0), np.zeros(0)
    return pooled_pmf(pmfs, np.concatenate(weights))


def length_summary(values: np.ndarray, probs: np.ndarray) -> dict | None:
    if values.size == 0:
        return None
    mean = float(np.dot(values, probs))
    std = math.sqrt(max(float(np.dot((values - mean) ** 2, probs)), 0.0))
    cdf = np.cumsum(probs)

    def q(p: float) -> int:
        return int(values[min(np.searchsorted(cdf, p - 1e-12), values.size - 1)])

    return {"mean": mean, "std": std, "cv": std / mean if mean > 0 else None, "min": int(values[0]),
            "p50": q(0.5), "p90": q(0.9), "p99": q(0.99), "max": int(values[-1])}


def arrival_summary(bundle: dict) -> dict:
    """Mean and peak aggregate rate, and the inter-arrival CV with where it comes from."""
    agg = bundle["aggregate"]
    rate = np.asarray(agg["rate_rps"], dtype=float)
    if "cv" in agg:
        cv = np.array([np.nan if v is None else v for v in agg["cv"]], dtype=float)
        ok = np.isfinite(cv) & (rate > 0)
        basis = "aggregate inter-arrival CV, request-weighted over windows"
    else:
        cv, ok = np.zeros(0), np.zeros(0, dtype=bool)
    if ok.any():
        mean_cv = float(np.average(cv[ok], weights=rate[ok]))
    else:  # an import: only client-level CVs are known
        cvs, ws = [], []
        for c in bundle["clients"]:
            w = c["windows"]
            for r, v in zip(w["rate_rps"], w["cv"]):
                if v is not None and r > 0:
                    cvs.append(v)
                    ws.append(r)
        mean_cv = float(np.average(cvs, weights=ws)) if cvs else 1.0
        basis = "client windows' CVs, request-weighted (the aggregate CV is not in the bundle)"
    seconds = covered_seconds(bundle)
    mean_rps = float((rate * seconds).sum() / seconds.sum()) if rate.size and seconds.sum() > 0 else 0.0
    return {"mean_rps": mean_rps, "peak_rps": float(rate.max()) if rate.size else 0.0,
            "iat_cv": mean_cv, "burstiness": 1.0 / mean_cv**2 if mean_cv > 0 else None, "cv_basis": basis}


def rate_stages(bundle: dict, digits: int = 2) -> tuple[list[dict], int]:
    """inference-perf stages: one {rate, duration} per run of windows with the same rounded rate, and the
    seconds of idle (rate 0) windows left out: its StandardLoadStage needs rate > 0 (a float) and
    duration > 0 (an int) (kubernetes-sigs/inference-perf inference_perf/config/loadgen/config.py)."""
    rate = np.asarray(bundle["aggregate"]["rate_rps"], dtype=float)
    if rate.size == 0:
        return [], 0
    rounded = np.array([float(f"{r:.{digits}g}") for r in rate])
    cut = np.flatnonzero(np.r_[True, rounded[1:] != rounded[:-1]])
    seconds = np.add.reduceat(covered_seconds(bundle), cut)  # edge windows last their covered seconds
    stages = [{"rate": float(rounded[i]), "duration": max(1, int(round(d)))}
              for i, d in zip(cut, seconds) if rounded[i] > 0]
    return stages, int(round(float(seconds[rounded[cut] <= 0].sum())))


def _vllm_range_ratio(summary: dict | None) -> float:
    """vLLM's random lengths are uniform integers on [floor(L(1-r)), ceil(L(1+r))] (vllm/benchmarks/datasets.py
    RandomDataset.get_sampling_params), CV r / sqrt(3): the r matching the CV, below 1 as vLLM requires."""
    cv = (summary or {}).get("cv") or 0.0
    return round(min(0.99, math.sqrt(3) * cv), 3)


def _sglang_lengths(i: dict, o: dict) -> tuple[int, int, float]:
    """SGLang's random lengths are uniform integers on [max(int(L r), 1), L] (python/sglang/bench_serving.py
    compute_random_lens): L is the maximum, mean L(1+r)/2, CV (1-r)/(sqrt(3)(1+r)). One r serves input and
    output; it matches the input CV (r = 0, CV 0.577, is the widest spread), and each L matches a mean."""
    c = math.sqrt(3) * (i.get("cv") or 0.0)
    r = round(min(1.0, max(0.0, (1 - c) / (1 + c))), 3)
    return max(1, round(2 * i.get("mean", 1) / (1 + r))), max(1, round(2 * o.get("mean", 1) / (1 + r))), r


def _guidellm_data(i: dict, o: dict) -> tuple[str, dict]:
    """guidellm's synthetic data string (int keys > 0) with moment-matched mean and stdev (a zero stdev is left
    out: with min < max guidellm would then draw uniformly), and the matches."""
    parts, matches = [], {}
    for key, s in (("prompt_tokens", i), ("output_tokens", o)):
        lo, hi = max(1, s.get("min", 1)), max(1, s.get("max", 1))
        m = match("guidellm", s.get("mean", 1.0), s.get("std", 0.0), lo, hi)
        matches[key] = m
        parts.append(f"{key}={m['mean']}")
        if m["stddev"] > 0:
            parts.append(f"{key}_stdev={m['stddev']}")
        parts += [f"{key}_min={lo}", f"{key}_max={hi}"]
    return ",".join(parts), matches


REPLAYED = ("vllm", "sglang", "aiperf", "guidellm")  # tools that replay a mooncake JSONL's hash_ids


def reuse_replay(bundle: dict) -> dict | None:
    """How to run the bundle's prefix sharing and sessions (v2 `prefix`, `sessions`): random prompts
    share nothing, so generate, export Mooncake JSONL at the source's block size, and replay it with
    each tool's block size and session options (the sidecar `replay` of that export)."""
    pre = bundle.get("prefix")
    if not pre:
        return None
    block, turns = int(pre["block_size"]), bool(bundle.get("sessions"))
    return {"block_size": block, "sessions": turns,
            "commands": ["servetrace generate BUNDLE --out syn.parquet",
                         f"servetrace export syn.parquet --to mooncake --block-size {block}"
                         + (" --sessions" if turns else "") + " --out trace.jsonl"],
            "tools": replay_options(block, turns)}


def knob_card(bundle: dict) -> dict:
    arr = arrival_summary(bundle)
    lens = {f: length_summary(*length_mixture(bundle, f)) for f in TOKEN_FIELDS}
    i, o = lens["input_tokens"] or {}, lens["output_tokens"] or {}
    rate, k = round(arr["mean_rps"], 4), (round(arr["burstiness"], 4) if arr["burstiness"] else None)
    cv = round(arr["iat_cv"], 4)
    span = int(round(covered_span(bundle)["seconds"]))
    n = max(1, round(expected_requests(bundle)))  # partial edge windows count their covered seconds
    mean_in, mean_out = max(1, round(i.get("mean", 1))), max(1, round(o.get("mean", 1)))
    sg_in, sg_out, sg_r = _sglang_lengths(i, o)
    stages, idle_s = rate_stages(bundle)
    ai_in = match("aiperf", i.get("mean", 1.0), i.get("std", 0.0))
    ai_out = match("aiperf", o.get("mean", 1.0), o.get("std", 0.0))
    g_data, g_match = _guidellm_data(i, o)
    source_rows = sum(int(c.get("requests") or 0) for c in bundle["clients"]) if bundle["source"].get("rows") else None
    vidur_n = min(n, source_rows) if source_rows else n
    vidur_max_tokens = max(4096, int(i.get("max", 0)) + int(o.get("max", 0)))
    prefix = shared_prefix(bundle, o, n)
    per_client = "per-client mixing (each client's own rate, burstiness and lengths)"
    diurnal = "a time-varying (diurnal) rate"
    corr = "the input/output length correlation (lengths drawn independently)"
    poisson = f"burstiness (Poisson arrivals, CV 1; fitted CV {cv}): replay the mooncake export instead"
    tools = {
        "vllm": {
            "flags": {"--dataset-name": "random", "--num-prompts": n, "--request-rate": rate, "--burstiness": k,
                      "--random-input-len": mean_in, "--random-output-len": mean_out,
                      "--random-range-ratio": _vllm_range_ratio(i)},
            "notes": "burstiness is the gamma shape 1/CV^2 (1 = Poisson); the run lasts --num-prompts / "
                     "--request-rate; --random-range-ratio spreads input and output alike (uniform on "
                     "L(1 -+ r)), matched to the input CV",
            "speed_knob": {"flag": "--timed-trace-sec-multiplier (timed_trace replay)",
                           "direction": "seconds = timestamp x multiplier: 0.001 replays the ms export in real time, "
                                        "larger is slower (0.002 = twice as slow)"},
            "cannot_express": [per_client, diurnal + " (only a monotone ramp: --ramp-up-strategy linear|exponential "
                               "with --ramp-up-start-rps / --ramp-up-end-rps)",
                               "heavy-tailed lengths (random lengths are uniform)", corr],
        },
        "sglang": {
            "flags": {"--dataset-name": "random", "--num-prompts": n, "--request-rate": rate,
                      "--random-input-len": sg_in, "--random-output-len": sg_out, "--random-range-ratio": sg_r},
            "notes": "SGLang's --random-input-len is the maximum: lengths are uniform on [L x ratio, L], so L and "
                     "the ratio are set for the fitted means and the input CV (not vLLM's meaning of the flags)",
            "speed_knob": {"flag": "--mooncake-slowdown-factor (mooncake replay)", "direction": "2 = twice as slow"},
            "cannot_express": [poisson, per_client, diurnal, "heavy-tailed lengths (random lengths are uniform)", corr],
        },
        "aiperf": {
            "flags": {"--model": "MODEL", "--url": SERVER, "--request-rate": rate, "--arrival-pattern": "gamma",
                      "--arrival-smoothness": k, "--request-count": n,
                      "--synthetic-input-tokens-mean": ai_in["mean"], "--synthetic-input-tokens-stddev": ai_in["stddev"],
                      "--output-tokens-mean": ai_out["mean"], "--output-tokens-stddev": ai_out["stddev"]},
            "notes": "--arrival-smoothness (alias --vllm-burstiness) is vLLM's burstiness: same value, same gamma; "
                     "lengths are max(1, ceil(x)) with x normal redrawn below 0, so mean and stddev are solved for the "
                     "trace's realized mean and std (see lengths_realized)",
            "lengths_realized": {"input_tokens": ai_in, "output_tokens": ai_out},
            "speed_knob": {"flag": "--synthesis-speedup-ratio (mooncake_trace replay; 0.13.0 has no "
                                   "--fixed-schedule-speedup, and --replay-speedup is for baseten traces only)",
                           "direction": "timestamps / ratio: 2 = twice as fast; it runs AIPerf's trace synthesizer, "
                                        "which rebuilds the hash_ids"},
            "cannot_express": [per_client, diurnal, "length shape beyond mean and stddev", corr]
                              + [t for t in (shortfall("aiperf", "input", ai_in), shortfall("aiperf", "output", ai_out))
                                 if t],
        },
        "guidellm": {
            "flags": {"--backend": f"kind=openai_http,target={SERVER}", "--profile": f"kind=poisson,rate={rate}",
                      "--constraint": f"kind=max_duration,seconds={span}", "--data": f"kind=synthetic_text,{g_data}"},
            "notes": "guidellm 0.8: `guidellm run` with --profile kind=..., --constraint kind=max_duration,seconds=S "
                     "(--rate and --max-seconds are gone); lengths are round(clip(normal)) to [min, max], so mean and "
                     "stdev are solved for the trace's realized mean and std (see lengths_realized)",
            "lengths_realized": g_match,
            "speed_knob": {"flag": "time_scale (--profile kind=replay,time_scale=X)",
                           "direction": "request at time_scale x relative seconds (the mooncake export's data spec "
                                        "already turns ms into s): 2 = twice as slow"},
            "cannot_express": [f"burstiness (Poisson, CV 1; fitted CV {cv})", per_client, diurnal,
                               "length shape beyond mean, stdev, min and max", corr]
                              + [t for t in (shortfall("guidellm", "input", g_match["prompt_tokens"]),
                                             shortfall("guidellm", "output", g_match["output_tokens"])) if t],
        },
        "inference-perf": {
            "config": inference_perf_config(stages, i, o, prefix),
            "notes": "CONFIG.yml is this config with a server: `servetrace export DIR --to inference-perf --out "
                     "CONFIG.yml`; one stage per run of windows with the same rate (2 significant digits); interval 0 because "
                     "the default pauses 1 s between stages; lengths moment-matched lognormal"
                     + ("; shared_prefix data from the bundle's prefix groups" if prefix else ""),
            "speed_knob": None,
            "cannot_express": [f"burstiness within a stage (Poisson, CV 1; fitted CV {cv})", per_client, corr,
                               f"idle windows: a stage needs rate > 0, so {idle_s} s at rate 0 are left out",
                               "prefix popularity (prompts spread evenly over the groups)" if prefix else
                               "prefix sharing (the bundle has no prefix model)"],
        },
        "vidur": {
            "flags": {"--request_generator_config_type": "synthetic",
                      "--synthetic_request_generator_config_num_requests": vidur_n,
                      "--interval_generator_config_type": "gamma",
                      "--gamma_request_interval_generator_config_qps": rate,
                      "--gamma_request_interval_generator_config_cv": cv,
                      "--length_generator_config_type": "trace",
                      "--trace_request_length_generator_config_trace_file": "VIDUR_EXPORT.csv",
                      "--trace_request_length_generator_config_max_tokens": vidur_max_tokens},
            "notes": "gamma shape 1/cv^2, mean gap 1/qps; the trace length generator reads the vidur export's "
                     "num_prefill_tokens,num_decode_tokens pairs (rows shuffled, pairs kept) and runs out past its "
                     f"rows, so num_requests is at most the source's {source_rows or 'unknown number of'} rows (the "
                     "vidur export of the same source has exactly as many); max_tokens covers the longest input "
                     "plus the longest output (Vidur's default 4096 cuts longer requests)",
            "speed_knob": {"flag": "--trace_request_generator_config_time_scale_factor (trace_replay)",
                           "direction": "arrived_at x factor: 2 = twice as slow"},
            "cannot_express": [per_client, diurnal + " (one qps)",
                               "the length correlation only through the trace length generator's row pairs"],
        },
    }
    reuse = reuse_replay(bundle)
    for name in REPLAYED if reuse else ():
        tools[name]["replay"] = reuse["tools"][name]
        tools[name]["cannot_express"].append(f"prefix sharing{' and sessions' if reuse['sessions'] else ''} in random "
                                             f"prompts: replay the mooncake export with `{reuse['tools'][name]}`")
    for name, t in tools.items():
        if "flags" in t:  # a flag without a value (no burstiness when the CV is 0) is left out, not passed empty
            t["flags"] = {f: v for f, v in t["flags"].items() if v is not None}
            t["command"] = " ".join([PROGRAMS[name]] + [f"{f} {shlex.quote(str(v))}" for f, v in t["flags"].items()])
        else:
            t["command"] = PROGRAMS[name]
        t["release"] = RELEASES[name]
        t["checked_against"] = CHECKED_AGAINST[name]
    return {"bundle_source": bundle["source"], "window_s": bundle["window_s"], "span_s": bundle["span_s"],
            "covered": covered_span(bundle), "clients": len(bundle["clients"]), "requests": n, "arrivals": arr, "lengths": lens,
            "inference_perf_stages": len(stages), "inference_perf_idle_s_dropped": idle_s, "reuse_replay": reuse,
            "tools": tools}


def _cell(text: str) -> str:
    return str(text).replace("|", "\\|")


def _sources(refs: list[dict]) -> str:
    return "; ".join(f"{r['repo']} {r['path']}" + (f" @{r['commit'][:8]}" if r["commit"] else "") for r in refs)


def knob_markdown(card: dict) -> str:
    a = card["arrivals"]
    k = f"{a['burstiness']:.3g}" if a["burstiness"] else "n/a"
    lines = [
        "# Knob card",
        "",
        f"Mean rate {a['mean_rps']:.4g} req/s (peak {a['peak_rps']:.4g}), inter-arrival CV {a['iat_cv']:.3g} "
        f"(burstiness = 1/CV^2 = {k}; basis: {a['cv_basis']}).",
        "",
        "| tool (release checked) | flags | speed knob | cannot express | checked against |",
        "|---|---|---|---|---|",
    ]
    for name, t in card["tools"].items():
        flags = t.get("flags") or {"config": f"load.stages ({card['inference_perf_stages']} stages), data distributions"}
        flag_text = " ".join(f"`{k} {v}`" for k, v in flags.items())
        speed = f"`{t['speed_knob']['flag']}`: {t['speed_knob']['direction']}" if t["speed_knob"] else "-"
        cells = (t["release"], flag_text, speed, "; ".join(t["cannot_express"]), _sources(t["checked_against"]))
        lines.append("| " + " | ".join(_cell(c) for c in cells) + " |")
    reuse = card.get("reuse_replay")
    if reuse:
        lines += ["", f"Prefix sharing{' and sessions' if reuse['sessions'] else ''} (blocks of {reuse['block_size']} "
                  "tokens): random prompts share nothing; replay a generated Mooncake JSONL instead:", ""]
        lines += [f"    {c}" for c in reuse["commands"]] + [""]
        lines += [f"- {name}: `{opt}`" for name, opt in reuse["tools"].items()]
    return "\n".join(lines) + "\n"


def export_knobs(bundle: dict, out: str | Path) -> dict:
    card = knob_card(bundle)
    out = Path(out)
    with atomic_dir(out) as tmp:
        (tmp / "knobs.json").write_text(dumps_json(card), encoding="utf-8")
        (tmp / "knobs.md").write_text(knob_markdown(card), encoding="utf-8")
    return {"format": "knobs", "path": str(out), "rate_rps": card["arrivals"]["mean_rps"],
            "burstiness": card["arrivals"]["burstiness"],
            "commands": {name: {"release": t["release"], "command": t["command"]} for name, t in card["tools"].items()}}
