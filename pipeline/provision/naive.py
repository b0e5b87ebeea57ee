"""The naive workload ServeGen measures against: Poisson arrivals at the source's mean rate over
its span, input and output lengths drawn independently from the source's aggregate marginals."""

from __future__ import annotations

import numpy as np

from servetrace.provision.capacity import Requests


def naive_requests(source: Requests, seed: int = 0) -> Requests:
    """As many requests as the source (a Poisson process conditioned on its count: sorted
    uniform times over the same span), each length from an independent draw of the aggregate."""
    rng = np.random.default_rng(seed)
    n = len(source.arrival_s)
    t0, t1 = float(source.arrival_s[0]), float(source.arrival_s[-1])
    arrival = np.sort(rng.uniform(t0, t1, n))
    return Requests(arrival, source.input_tokens[rng.integers(0, n, n)], source.output_tokens[rng.integers(0, n, n)])
