"""What each consuming tool's own source says about the files and flags we hand it: the copies the
rules were checked against, the releases every printed command was checked with, and the command
lines that load our exports.

Every rule below cites the repository and path it was read from. Commits are those of the copies
read; where the copy is stored without one, the note says so. RELEASES are the packages
tests/test_export_consumers.py runs (AIPerf, guidellm: installed; vLLM, SGLang, inference-perf:
their wheels' code read, their argument parsers' flags checked)."""

from __future__ import annotations

import json
import shlex

# (tool, repository, path, commit or None, what was read there), in the order of the tools
_SOURCES = [
    ("vllm", "vllm-project/vllm", "vllm/benchmarks/datasets.py",
     "0056b87fc1fda2642f39dda4392824c425dd1638",
     "RandomDataset (range ratio on input and output), BurstGPTDataset"),
    ("vllm", "vllm-project/vllm", "vllm/benchmarks/serve.py",
     None,
     "get_request: gamma(shape=burstiness, scale=1/(rate*burstiness)), delays rescaled to N/rate"),
    ("vllm", "vllm-project/vllm", "TimedTrace (timed_trace dataset)",
     None,
     "the Rust vllm-bench port that mirrors it and `vllm bench serve` argument dumps "
     "(timed_trace_chunk_hash_size=16, timed_trace_sec_multiplier=1 by default)"),
    ("sglang", "sgl-project/sglang", "python/sglang/bench_serving.py",
     "0033168f0f58b2bc05aa0273bd475d9c01bafb1c",
     "random dataset: lengths uniform on [L*r, L]; --request-rate is Poisson; no mooncake yet"),
    ("sglang", "sgl-project/sglang", "python/sglang/bench_serving.py (later copy, commit not stored)",
     None,
     "mooncake: rows[:num_prompts], timestamp ms, --mooncake-slowdown-factor, prompt built from hash_ids"),
    ("sglang", "sgl-project/sglang", "python/sglang/benchmark/datasets/mooncake.py",
     None,
     "MooncakeLoader (refactored layout)"),
    ("aiperf", "ai-dynamo/aiperf", "src/aiperf/dataset/loader/models.py",
     "0109a64e75c3f43aa02bc1ce29f66deb16f57bda",
     "MooncakeTrace fields and units"),
    ("aiperf", "ai-dynamo/aiperf", "src/aiperf/dataset/loader/mooncake_trace.py",
     "0308411ce8c3c70e91116dd254c4c6feb9daa604",
     "rows grouped by session_id"),
    ("aiperf", "ai-dynamo/aiperf", "docs/tutorials/fixed-schedule.md",
     "10b3b0d659388b17bb8ddf9a6a486027978152f3",
     "--fixed-schedule, timestamps in ms"),
    ("aiperf", "ai-dynamo/aiperf", "CLI options reference (stored copy, path not recorded)",
     None,
     "--arrival-smoothness (alias --vllm-burstiness), --isl-block-size (default 512), "
     "--fixed-schedule-speedup (2.0 = double speed), --request-rate-series"),
    ("guidellm", "vllm-project/guidellm", "src/guidellm/data/deserializers/trace_mooncake.py",
     "027f4398907313468e24a9ed5b37b63cfb3ea61e",
     "kind=mooncake: ceil(input_length / hash_id_block_size) == len(hash_ids), ids >= 0 and int32"),
    ("guidellm", "vllm-project/guidellm", "ReplayProfile (stored copy, path not recorded)",
     None,
     "request at start + time_scale * relative_timestamp (seconds)"),
    ("guidellm", "vllm-project/guidellm", "src/guidellm/data/deserializers/synthetic.py",
     None,
     "prompt_tokens[_stdev|_min|_max], output_tokens[...]: all > 0"),
    ("guidellm", "vllm-project/guidellm", "benchmark command options (stored copy, path not recorded)",
     None,
     "--profile with the legacy alias --rate-type, --rate, --data key=value"),
    ("inference-perf", "kubernetes-sigs/inference-perf", "inference-perf 0.7.0 wheel (PyPI): "
     "inference_perf/utils/trace_reader.py, config/datagen/replay.py",
     None,
     "AzurePublicDatasetReader: header sniffed, each line split on ',', TIMESTAMP parsed as "
     "'%Y-%m-%d %H:%M:%S.%f' (fraction cut to 6 digits, UTC), ContextTokens, GeneratedTokens as int"),
    ("inference-perf", "kubernetes-sigs/inference-perf", "inference_perf/config/loadgen/config.py",
     "03e89d4a5badf37093c96dab524801ab420a0b18",
     "StandardLoadStage rate > 0 (float), duration > 0 (int); interval = seconds between stages"),
    ("inference-perf", "kubernetes-sigs/inference-perf", "inference_perf/config/common.py",
     "12e591467af66b015c5788abed77b194dffa8bbb",
     "Distribution {type normal|lognormal|..., mean, std_dev, min, max}"),
    ("inference-perf", "kubernetes-sigs/inference-perf", "inference_perf/config/datagen/config.py",
     "1a84f92c674500b9404c49d310bd9c276ae0a9aa",
     "data.type random"),
    ("vidur", "microsoft/vidur", "vidur/config/config.py",
     "8afeaf05a11230873565cb36ab51f3f37e719f91",
     "trace_replay generator (time_scale_factor, max_tokens 4096), gamma qps/cv"),
    ("vidur", "microsoft/vidur", "vidur/request_generator/trace_replay_request_generator.py",
     None,
     "main: arrived_at,num_prefill_tokens,num_decode_tokens; arrived_at * time_scale_factor "
     "(the stored 01f216fe copy still read Date,Time,PromptTokenCount,CompletionTokenCount)"),
    ("vidur", "microsoft/vidur", "vidur/request_generator/gamma_request_interval_generator.py",
     "01f216fe8559c0eac076b157b19125a9c370d100",
     "shape 1/cv^2, scale 1/(qps*shape)"),
    ("servegen", "azaj01/ServeGen", "servegen/clientpool.py",
     "ad78b096a702242f0354a4af35f7bb7c84729e4f",
     "a copy of alibaba/ServeGen's loader (upstream's code is not stored)"),
]
CHECKED_AGAINST: dict[str, list[dict]] = {}
for _tool, _repo, _path, _commit, _read in _SOURCES:  # one per source row, at import
    CHECKED_AGAINST.setdefault(_tool, []).append({"repo": _repo, "path": _path, "commit": _commit, "read": _read})

# The release each printed command was checked against (Vidur has no release: its main branch at the commit read).
RELEASES = {
    "vllm": "vllm 0.34.0",
    "sglang": "sglang 0.5.23",
    "aiperf": "aiperf 0.13.0",
    "guidellm": "guidellm 0.8.1",
    "inference-perf": "inference-perf 0.7.0",
    "vidur": "vidur main @8afeaf05 (no release)",
    "servegen": "ServeGen clientpool.py @ad78b096 (no release)",
}
SERVER = "http://localhost:8000"  # where the printed commands send requests; AIPerf also needs --model


def command(tool: str, line: str) -> dict:
    """A printed command with the consumer release it was checked against."""
    return {"release": RELEASES[tool], "command": line}


def guidellm_mooncake_data(path: str, block_size: int) -> str:
    """guidellm 0.8's mooncake data spec: a nested json_file source; time_scale 0.001 reads the ms timestamps as
    seconds (the dataset's scale, applied before the replay profile's own time_scale, which stays the speed knob)."""
    spec = {"kind": "mooncake", "source": {"kind": "json_file", "path": path}, "hash_id_block_size": block_size,
            "time_scale": 0.001}
    return json.dumps(spec, separators=(",", ":"))


def mooncake_consumers(path: str, requests: int, block_size: int) -> dict:
    """Command lines that replay the timed JSONL at `path` in real time, each tool told the block size."""
    return {
        # vllm TimedTrace: chunk size defaults to 16 and --num-prompts (default 1000) caps the rows read
        "vllm": command("vllm", f"vllm bench serve --dataset-name timed_trace --dataset-path {path} "
                                f"--num-prompts {requests} --timed-trace-sec-multiplier 0.001 "
                                f"--timed-trace-chunk-hash-size {block_size} --self-timed"),
        # sglang bench_serving: rows[:num_prompts]; the time-based scheduler runs for --backend sglang
        "sglang": command("sglang", f"python -m sglang.bench_serving --backend sglang --dataset-name mooncake "
                                    f"--dataset-path {path} --num-prompts {requests} --use-trace-timestamps "
                                    f"--mooncake-slowdown-factor 1"),
        # aiperf: --isl-block-size defaults to 512
        "aiperf": command("aiperf", f"aiperf profile --model MODEL --url {SERVER} --input-file {path} "
                                    f"--custom-dataset-type mooncake_trace --fixed-schedule --isl-block-size {block_size}"),
        "guidellm": command("guidellm", f"guidellm run --backend kind=openai_http,target={SERVER} "
                                        f"--data {shlex.quote(guidellm_mooncake_data(path, block_size))} --profile kind=replay"),
    }


MOONCAKE_CAVEATS = {
    "sglang": "builds each prompt from the hash_ids (filler text per id), not from input_length: input "
              "lengths are not reproduced; output_length is",
    "session_id": "omitted: AIPerf would join rows sharing a session_id into one multi-turn conversation",
}
