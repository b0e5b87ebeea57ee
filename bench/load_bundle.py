"""Time `load_bundle` (read, parse, validate) in a fresh process: python -m bench.load_bundle BUNDLE"""

from __future__ import annotations

import json
import sys
import time

from servetrace.bundle import load_bundle

if __name__ == "__main__":
    start = time.perf_counter()
    bundle = load_bundle(sys.argv[1])
    print(json.dumps({"load_s": time.perf_counter() - start, "clients": len(bundle["clients"]),
                      "span_s": bundle.get("span_s")}))
