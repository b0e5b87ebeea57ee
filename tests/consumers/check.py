"""Runs the consumers' released code on our exports, inside .venv-consumers (never imported by pytest).

    .venv-consumers/bin/python tests/consumers/check.py JOBS.json RESULTS.json

Each job is {"kind": ..., ...}; each result is {"ok": true, ...} or {"ok": false, "error": "..."}:
- aiperf-command: the printed `aiperf ...` line parsed by AIPerf's own cyclopts app and resolved into
  its benchmark plan (resolve_config, build_benchmark_plan), as `aiperf profile` does before it runs.
- aiperf-load: AIPerf's trace loader (burst_gpt_trace or mooncake_trace) on a file, each row built into
  AIPerf's Turn (the model holding max_tokens >= 1). Prompts are not synthesized (that needs a tokenizer
  download); the rows, their timestamps and max_tokens are AIPerf's.
- aiperf-sample: AIPerf's NormalDistribution.sample_int with its RandomGenerator.
- guidellm-command: the printed `guidellm ...` line through guidellm's click CLI up to the scenario
  it would run (the benchmark coroutine replaced); a mooncake data spec is then loaded by guidellm's
  source deserializer and trace format, every row checked by its validate_row.
- guidellm-sample: guidellm's IntegerRangeSampler.
- inference-perf-config / inference-perf-azure / inference-perf-lengths: inference-perf 0.7.0's code
  from its wheel (it needs Python >= 3.12 to install): read_config, AzurePublicDatasetReader,
  generate_distribution (its media and cloud-storage imports stubbed: they are not used here).
"""

from __future__ import annotations

import importlib.abc
import importlib.machinery
import json
import os
import shlex
import sys
import traceback
import types
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")


def _aiperf_command(job):
    from aiperf.cli import app
    from aiperf.config.flags.resolver import resolve_config
    from aiperf.config.loader import build_benchmark_plan

    tokens = shlex.split(job["command"])
    assert tokens[0] == "aiperf", tokens[0]
    cwd = os.getcwd()
    os.chdir(job.get("cwd", cwd))
    try:
        _, bound, ignored = app.parse_args(tokens[1:], exit_on_error=False, print_error=False)
        assert not ignored, f"ignored: {ignored}"
        cli = bound.arguments["cli_config"]
        plan = build_benchmark_plan(resolve_config(cli, cli.config_file))
    finally:
        os.chdir(cwd)
    cfg = plan.configs[0]
    phase = cfg.phases[-1]
    ds = cfg.datasets[0]
    out = {"phase_type": str(getattr(phase.type, "value", phase.type)), "requests": getattr(phase, "requests", None),
           "dataset_type": str(getattr(ds.type, "value", ds.type))}
    for key in ("format", "block_size", "path"):
        if hasattr(ds, key):
            val = getattr(ds, key)
            out[key] = None if val is None else str(getattr(val, "value", val))
    for key in ("rate", "smoothness", "arrival_pattern"):
        if hasattr(phase, key):
            val = getattr(phase, key)
            out[key] = None if val is None else (val if isinstance(val, (int, float)) else str(getattr(val, "value", val)))
    prompts = getattr(ds, "prompts", None)
    if prompts is not None:
        for name in ("isl", "osl"):
            d = getattr(prompts, name, None)
            if d is not None:
                out[name] = {"mean": getattr(d, "mean", None), "stddev": getattr(d, "stddev", None)}
    return out


def _aiperf_load(job):
    import types

    from aiperf.dataset.loader.burst_gpt import BurstGPTTraceDatasetLoader
    from aiperf.dataset.loader.mooncake_trace import MooncakeTraceDatasetLoader

    cls = {"burst_gpt_trace": BurstGPTTraceDatasetLoader, "mooncake_trace": MooncakeTraceDatasetLoader}[job["type"]]
    pg = types.SimpleNamespace(tokenizer=None, _cache={},
                               _hash_id_corpus_rng=types.SimpleNamespace(set_trace_id=lambda _id: None))
    loader = cls(filename=job["path"], prompt_generator=pg)
    data = loader.load_dataset()
    rows = []
    for traces in data.values():
        for trace in traces:
            turn = loader._build_turn(trace, "x")  # AIPerf's Turn: max_tokens must be >= 1
            rows.append([turn.timestamp, getattr(trace, "input_length", None), turn.max_tokens])
    rows.sort(key=lambda r: r[0])
    return {"rows": rows, "sessions": len(data)}


def _aiperf_sample(job):
    from aiperf.common import random_generator
    from aiperf.config.distributions import NormalDistribution

    dist = NormalDistribution(mean=job["mean"], stddev=job["stddev"])
    random_generator.reset()
    random_generator.init(job.get("seed", 1))
    rng = random_generator.derive("dataset.prompt.length")
    x = [dist.sample_int(rng) for _ in range(job["n"])]
    return _moments(x)


def _moments(x):
    n = len(x)
    mean = sum(x) / n
    return {"mean": mean, "std": (sum((v - mean) ** 2 for v in x) / n) ** 0.5, "min": min(x), "max": max(x)}


def _guidellm_command(job):
    import guidellm.entrypoints as entry

    captured = {}

    async def _capture(args, progress, console):  # noqa: ARG001 - the benchmark itself needs a server
        captured["args"] = args

    entry.benchmark_generative_text = _capture
    from guidellm.cli import cli

    tokens = shlex.split(job["command"])
    assert tokens[0] == "guidellm", tokens[0]
    cwd = os.getcwd()
    os.chdir(job.get("cwd", cwd))
    try:
        cli.main(tokens[1:], prog_name="guidellm", standalone_mode=False)
        spec = json.loads(captured["args"].model_dump_json())["spec"]
        out = {"profile": spec["profile"], "constraints": spec.get("constraints"), "data": spec["data"]}
        data = captured["args"].spec.data[0]
        if getattr(data, "kind", None) == "mooncake":
            out["rows"] = _guidellm_mooncake_rows(data)
    finally:
        os.chdir(cwd)
    return out


def _guidellm_mooncake_rows(config):
    # guidellm/data/__init__.py imports its torch DataLoader, which reading and checking rows never uses:
    # the package is entered without it, its modules (deserializers) imported as they are
    import guidellm

    data_pkg = types.ModuleType("guidellm.data")
    data_pkg.__path__ = [str(Path(guidellm.__file__).parent / "data")]
    sys.modules.setdefault("guidellm.data", data_pkg)
    from guidellm.data.deserializers.deserializer import DatasetDeserializerFactory
    from guidellm.data.deserializers.trace_common import (
        TraceFormatRegistry,
        _handle_column_search,
        _validate_api_row,
    )

    dataset = DatasetDeserializerFactory.deserialize(config=config.source, processor_factory=lambda: None,
                                                     random_seed=42)
    fmt = TraceFormatRegistry.dispatch(config, dataset)
    _handle_column_search(config, fmt)
    rows = []
    for conversation in fmt:
        for turn in conversation:
            _validate_api_row(turn, config, fmt.validate_row)  # guidellm's own row checks (hash_ids vs blocks)
            rows.append([turn[config.timestamp_column], turn[config.prompt_tokens_column],
                         turn[config.output_tokens_column], len(turn[config.hash_ids_column])])
    return rows


def _guidellm_sample(job):
    from guidellm.utils.random import IntegerRangeSampler

    it = iter(IntegerRangeSampler(average=job["mean"], variance=job["stddev"] or None, min_value=job["min"],
                                  max_value=job["max"], random_seed=job.get("seed", 1)))
    return _moments([next(it) for _ in range(job["n"])])


class _Absent(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    """Stands in for packages inference-perf imports but the code run here never calls (its media and
    cloud-storage clients): any attribute is a mock."""

    def __init__(self, names):
        self.names = set(names)

    def find_spec(self, name, path, target=None):  # noqa: ARG002
        if name.split(".")[0] in self.names:
            return importlib.machinery.ModuleSpec(name, self, is_package=True)
        return None

    def create_module(self, spec):
        from unittest import mock

        module = mock.MagicMock(name=spec.name)
        module.__path__, module.__spec__ = [], spec
        return module

    def exec_module(self, module):
        pass


def _inference_perf(src: str):
    if src not in sys.path:
        sys.meta_path.insert(0, _Absent(("av", "google", "boto3", "botocore")))
        sys.path.insert(0, src)


def _ip_config(job):
    _inference_perf(job["src"])
    from inference_perf.config.config import read_config

    cwd = os.getcwd()
    os.chdir(Path(job["path"]).parent)
    try:
        cfg = read_config(Path(job["path"]).name)
    finally:
        os.chdir(cwd)
    return json.loads(cfg.model_dump_json())


def _ip_azure(job):
    _inference_perf(job["src"])
    from inference_perf.utils.trace_reader import AzurePublicDatasetReader

    reader = AzurePublicDatasetReader()
    traces = reader.load_traces(Path(job["path"]))
    return {"has_header": reader.has_header(Path(job["path"])), "rows": [list(t) for t in traces]}


def _ip_lengths(job):
    _inference_perf(job["src"])
    import numpy as np
    from inference_perf.utils.numeric.distribution.utils import generate_distribution

    d = job["dist"]
    x = generate_distribution(d["min"], d["max"], d["mean"], d["std_dev"], job["n"], d["type"],
                              rng=np.random.default_rng(1))
    return {"mean": float(x.mean()), "std": float(x.std()), "min": int(x.min()), "max": int(x.max())}


JOBS = {"aiperf-command": _aiperf_command, "aiperf-load": _aiperf_load, "aiperf-sample": _aiperf_sample,
        "guidellm-command": _guidellm_command, "guidellm-sample": _guidellm_sample,
        "inference-perf-config": _ip_config, "inference-perf-azure": _ip_azure,
        "inference-perf-lengths": _ip_lengths}


def main() -> None:
    jobs = json.loads(Path(sys.argv[1]).read_text())
    results = []
    for job in jobs:
        try:
            results.append({"ok": True, **JOBS[job["kind"]](job)})
        except BaseException as exc:  # noqa: BLE001 - every refusal is a result to assert on
            text = str(exc).strip() or type(exc).__name__
            results.append({"ok": False, "error": f"{type(exc).__name__}: {text}",
                            "trace": traceback.format_exc(limit=3)})
    Path(sys.argv[2]).write_text(json.dumps(results))


if __name__ == "__main__":
    main()
