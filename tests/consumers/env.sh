#!/usr/bin/env bash
# Builds .venv-consumers: AIPerf and guidellm as released on PyPI (tests/consumers/requirements.txt,
# guidellm without its torch dependency), and the code of the releases that need a GPU stack or a
# newer Python to install (vLLM, SGLang, inference-perf), unpacked from their wheels into
# .venv-consumers/src. Kept across runs: rebuilt only when the pins change.
# Never fails the build: a broken install leaves .venv-consumers/FAILED with pip's last lines, and
# tests/test_export_consumers.py fails on it (or skips, loudly, when PyPI cannot be reached).
set -uo pipefail
cd "$(dirname "$0")/../.."
PYTHON=${PYTHON:-python3}
ENV=.venv-consumers
GUIDELLM=guidellm==0.8.1
WHEELS="vllm==0.34.0 sglang==0.5.23"
WHEELS_PY312="inference-perf==0.7.0"   # requires Python >= 3.12: its code is read, not installed
want="$(cat tests/consumers/requirements.txt; echo "$GUIDELLM $WHEELS $WHEELS_PY312")"
if [ -f "$ENV/.installed" ] && [ "$(cat "$ENV/.installed")" = "$want" ]; then exit 0; fi
echo "building $ENV (AIPerf 0.13.0, guidellm 0.8.1, and the code of vLLM 0.34.0, SGLang 0.5.23, inference-perf 0.7.0)"
rm -rf "$ENV"
log=$(mktemp)
wheels=$(mktemp -d)
if $PYTHON -m venv "$ENV" >"$log" 2>&1 \
   && "$ENV/bin/pip" install --quiet -r tests/consumers/requirements.txt >>"$log" 2>&1 \
   && "$ENV/bin/pip" install --quiet --no-deps "$GUIDELLM" >>"$log" 2>&1 \
   && "$ENV/bin/pip" download --quiet --no-deps --only-binary=:all: -d "$wheels" $WHEELS >>"$log" 2>&1 \
   && "$ENV/bin/pip" download --quiet --no-deps --only-binary=:all: --python-version 3.12 -d "$wheels" \
        $WHEELS_PY312 >>"$log" 2>&1 \
   && "$ENV/bin/python" - "$wheels" "$ENV/src" >>"$log" 2>&1 <<'PY'
import sys, zipfile
from pathlib import Path
# only the parts read: the benchmark clients' code (vLLM's wheel is 240 MB of kernels)
keep = {"vllm": ("vllm/benchmarks/",), "sglang": ("sglang/benchmark/", "sglang/bench_serving.py"),
        "inference_perf": ("inference_perf/",)}
for wheel in Path(sys.argv[1]).glob("*.whl"):
    name, version = wheel.name.split("-")[:2]
    with zipfile.ZipFile(wheel) as z:
        members = [m for m in z.namelist() if m.startswith(keep[name])]
        assert members, f"{wheel.name}: nothing under {keep[name]}"
        z.extractall(Path(sys.argv[2]) / f"{name}-{version}", members)
PY
then
  printf '%s' "$want" > "$ENV/.installed"
else
  mkdir -p "$ENV"
  grep -v '^WARNING: Location' "$log" | tail -n 20 > "$ENV/FAILED"
  echo "$ENV could not be built (see $ENV/FAILED); the consumer tests will report it"
fi
rm -rf "$log" "$wheels"
exit 0
