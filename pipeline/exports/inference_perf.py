"""inference-perf config (inference-perf 0.7.0, kubernetes-sigs/inference-perf): load stages from the
bundle's fitted rate, prompt and output lengths from its fitted lengths.

Read from the 0.7.0 wheel: `Config` (inference_perf/config/config.py) forbids unknown keys; a
`poisson` load runs `stages` of {rate > 0, duration > 0 (int)} with `interval` seconds between
them (default 1); `data.type: random` draws `input_distribution` / `output_distribution`
(inference_perf/utils/numeric/distribution/utils.py: `lognormal` is moment-matched to mean and
std_dev after shifting by min, then clipped to [min, max] and rounded). The file is JSON, which
the YAML loader inference-perf reads it with (`yaml.safe_load`) parses as it is."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from servetrace.exports.tools import SERVER, command
from servetrace.io import dumps_json, write_text


def distribution(s: dict) -> dict:
    """inference-perf Distribution: lognormal with the lengths' mean and std_dev, clipped to their min and max."""
    mean, std = max(1.0, s.get("mean", 1.0)), float(round(s.get("std", 0.0), 1))
    return {"type": "lognormal" if std > 0 else "fixed", "mean": round(mean, 1), "std_dev": std,
            "min": max(1, s.get("min", 1)), "max": max(1, s.get("max", 1))}


def _weighted(values, weights) -> dict | None:
    v, w = np.asarray(values, dtype=float), np.asarray(weights, dtype=float)
    if v.size == 0 or w.sum() <= 0:
        return None
    w = w / w.sum()
    mean = float(v @ w)
    return {"mean": mean, "std": math.sqrt(max(float(((v - mean) ** 2) @ w), 0.0)), "min": int(v.min()),
            "max": int(v.max())}


def _from_quantiles(q: dict | None) -> dict | None:
    """Mean, std, min and max of a quantile function (`quantiles` at ascending `probs`), each step weighted
    by the probability between its neighbours' midpoints."""
    if not q or not q.get("quantiles"):
        return None
    p = np.asarray(q["probs"], dtype=float)
    edges = np.r_[p[0], (p[1:] + p[:-1]) / 2, p[-1]]
    return _weighted(q["quantiles"], np.diff(edges) if p.size > 1 else [1.0])


def shared_prefix(bundle: dict, lengths_out: dict | None = None, requests: int = 0) -> dict | None:
    """`data.shared_prefix` (inference-perf SharedPrefix) from the bundle's prefix model (schema v2 `prefix`,
    `sessions`): one group per shared prefix, its system prompt length distributed as the groups' prefix
    lengths weighted by popularity, the question as a first turn's new tokens, the output as the fitted
    output lengths, and the grouped requests spread evenly over the groups. None when the bundle has no
    prefix groups (then the data stays `random`)."""
    groups = (bundle.get("prefix") or {}).get("groups") or {}
    system = _weighted(groups.get("tokens") or [], groups.get("popularity") or [])
    if system is None:
        return None
    question = _from_quantiles((bundle.get("sessions") or {}).get("first_new_tokens"))
    n_groups = len(groups["tokens"])
    grouped = requests * float(bundle["prefix"].get("grouped_share", 1.0))
    out = {"num_groups": n_groups, "num_prompts_per_group": max(1, round(grouped / n_groups)),
           "system_prompt_len": distribution(system)}
    if question:
        out["question_len"] = distribution(question)
    if lengths_out:
        out["output_len"] = distribution(lengths_out)
    return out


def inference_perf_config(stages: list[dict], lengths_in: dict, lengths_out: dict, prefix: dict | None = None) -> dict:
    """The load and data sections: one poisson stage per run of windows at the same rate, no pause between;
    `shared_prefix` data when a prefix model is given."""
    data = ({"type": "shared_prefix", "shared_prefix": prefix} if prefix else
            {"type": "random", "input_distribution": distribution(lengths_in),
             "output_distribution": distribution(lengths_out)})
    return {"load": {"type": "poisson", "interval": 0, "stages": stages}, "data": data}


def full_config(section: dict) -> dict:
    """A complete config: the sections plus the server and API to send to (edit model_name and base_url)."""
    return {"api": {"type": "completion", "streaming": True},
            "server": {"type": "vllm", "model_name": "MODEL", "base_url": SERVER, "ignore_eos": True},
            **section}


def export_inference_perf(card: dict, out: str | Path) -> dict:
    out = Path(out)
    cfg = full_config(card["tools"]["inference-perf"]["config"])
    write_text(out, dumps_json(cfg))
    return {"format": "inference-perf", "path": str(out), "stages": len(cfg["load"]["stages"]),
            "commands": {"inference-perf": command("inference-perf", f"inference-perf --config_file {out.name}")}}
