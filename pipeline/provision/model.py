"""The serving model of the provisioning experiment, stated once and simulated without a loop.

N identical servers; requests are routed in arrival order, round robin (request i to server
i mod N) or uniformly at random (seeded). Each server is one FIFO queue of work measured in
server-seconds; a request with i input and o output tokens brings

    work = overhead_s + prefill_s_per_token * i + decode_s_per_token * o / batch

(prefill runs alone; a decode step serves up to `batch` requests at once, so a server turns out
`batch / decode_s_per_token` output tokens per second). A request starts when its server has
finished the work queued before it (Lindley's recursion, computed with cumulative maxima), and

    TTFT       = wait + overhead_s + prefill_s_per_token * i
    end-to-end = TTFT + decode_s_per_token * o     (its own tokens, one decode step each)

The fluid treatment of decode (a request's work is its share of the batched decode steps, its
latency the full step count) is what keeps the queue a single-server recursion. The point of the
experiment is a comparison between traces under one model, so every parameter is configurable.
"""

from __future__ import annotations

import numpy as np

from servetrace.settings import ServingModel


def work_s(model: ServingModel, input_tokens: np.ndarray, output_tokens: np.ndarray) -> np.ndarray:
    """Server-seconds each request brings."""
    return (model.overhead_s + model.prefill_s_per_token * input_tokens
            + model.decode_s_per_token * output_tokens / model.batch)


def unqueued_s(model: ServingModel, input_tokens: np.ndarray, output_tokens: np.ndarray) -> np.ndarray:
    """Latency with no wait: the floor no number of servers goes below."""
    ttft = model.overhead_s + model.prefill_s_per_token * input_tokens
    return ttft if model.metric == "ttft" else ttft + model.decode_s_per_token * output_tokens


def routes(n: int, servers: int, model: ServingModel) -> np.ndarray:
    """The server of each request, in arrival order."""
    if model.routing == "round_robin":
        return np.arange(n, dtype=np.int64) % servers
    return np.random.default_rng(model.seed).integers(0, servers, n)


def waits(arrival_s: np.ndarray, work_s: np.ndarray, server: np.ndarray) -> np.ndarray:
    """Queueing delay of each request at its FIFO server (arrivals sorted ascending).

    Per server, departure D_j = C_j + max_{k<=j}(A_k - C_{k-1}) with C the server's cumulative
    work; the per-server running maximum is one np.maximum.accumulate over all servers at once,
    each server's values lifted above the previous server's by a constant offset."""
    n = len(arrival_s)
    if n == 0:
        return np.empty(0)
    order = np.argsort(server, kind="stable")
    a, w, s = arrival_s[order], work_s[order], server[order]
    first = np.r_[True, s[1:] != s[:-1]]
    seg = np.cumsum(first) - 1
    cum = np.cumsum(w)
    before = cum - w  # work queued before j, all servers
    seg_base = before[first][seg]  # work of earlier servers, to subtract
    c_prev = before - seg_base
    v = a - c_prev
    lift = (v.max() - v.min()) + 1.0
    run = np.maximum.accumulate(v + seg * lift) - seg * lift
    depart = (cum - seg_base) + run
    out = np.empty(n)
    out[order] = depart - w - a
    return np.maximum(out, 0.0)  # rounding in the offsets can leave -1e-9


def latencies(arrival_s: np.ndarray, input_tokens: np.ndarray, output_tokens: np.ndarray, servers: int,
              model: ServingModel) -> np.ndarray:
    """Per-request latency (the model's metric) with `servers` servers."""
    work = work_s(model, input_tokens, output_tokens)
    wait = waits(arrival_s, work, routes(len(arrival_s), servers, model))
    return wait + unqueued_s(model, input_tokens, output_tokens)
