"""inference-perf config (inference-perf 0.7.0, kubernetes-sigs/inference-perf): load stages from the
bundle's fitted rate, prompt and output lengths from its fitted lengths.

Read from the 0.7.0 wheel: `Config` (inference_perf/config/config.py) forbids unknown keys; a
`poisson` load runs `stages` of {rate > 0, duration > 0 (int)} with `interval` seconds between
them (default 1); `data.type: random` draws `input_distribution` / `output_distribution`
(inference_perf/utils/numeric/distribution/utils.py: `lognormal` is moment-matched to mean and
std_dev after shifting by min, then clipped to [min, max] and rounded). The file is JSON, which
the YAML loader inference-perf reads it with (`yaml.safe_load`) parses as it is."""

from __future__ import annotations

from pathlib import Path

from servetrace.export.tools import SERVER, command
from servetrace.io import dumps_json, write_text


def distribution(s: dict) -> dict:
    """inference-perf Distribution: lognormal with the lengths' mean and std_dev, clipped to their min and max."""
    mean, std = max(1.0, s.get("mean", 1.0)), float(round(s.get("std", 0.0), 1))
    return {"type": "lognormal" if std > 0 else "fixed", "mean": round(mean, 1), "std_dev": std,
            "min": max(1, s.get("min", 1)), "max": max(1, s.get("max", 1))}


def shared_prefix(bundle: dict) -> dict | None:
    """`data.shared_prefix` (SharedPrefix: num_groups, num_prompts_per_group, system_prompt_len, question_len,
    output_len) from the bundle's prefix model. The bundle has no prefix model yet, so there is none: the
    config's data stays `random` and prefix sharing is listed among what it cannot express."""
    return None


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
