"""In-process cost of a PythonPredictor, for benchmarks/python-bridge.bench.ts: no server, no bridge.

Imports ``--predictor``, constructs ``PythonPredictor(config=...)`` and calls it in a tight loop on one
thread for about ``--seconds``, in two ways: ``predict(payload=obj)`` alone, and with the JSON work a
server adds around it (``json.loads`` of the body, ``json.dumps`` of a non-str answer). Prints one
JSON line: calls made and mean µs per call of each. What a server adds to a request is its mean
latency at concurrency 1 minus ``with_json_us``.

    /usr/bin/python3 benchmarks/python/inprocess_loop.py --predictor P.py --body '{"a": 1}' [--config '{}'] [--seconds 1]
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import sys
import time
from typing import Any, Callable, Dict


def timed(fn: Callable[[], Any], seconds: float) -> Dict[str, float]:
    """Calls ``fn`` repeatedly for about ``seconds`` (after a 10% warm-up); returns calls and mean µs per call."""
    warm_end = time.perf_counter() + seconds * 0.1
    while time.perf_counter() < warm_end:
        fn()
    calls = 0
    t0 = time.perf_counter()
    end = t0 + seconds
    while True:
        for _ in range(100):
            fn()
        calls += 100
        t1 = time.perf_counter()
        if t1 >= end:
            return {"calls": calls, "us": (t1 - t0) / calls * 1e6}


def main() -> None:
    """Runs both loops and prints ``{"predict_us", "with_json_us", "calls"}`` as one JSON line."""
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n", 1)[0])
    ap.add_argument("--predictor", required=True)
    ap.add_argument("--config", default="{}")
    ap.add_argument("--body", required=True, help="one request body (JSON)")
    ap.add_argument("--seconds", type=float, default=1.0)
    args = ap.parse_args()

    path = os.path.abspath(args.predictor)
    os.chdir(os.path.dirname(path))
    sys.path.insert(0, os.path.dirname(path))
    spec = importlib.util.spec_from_file_location("cortex_predictor", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    predictor = module.PythonPredictor(config=json.loads(args.config))
    body = args.body.encode("utf-8")
    obj = json.loads(body)

    def with_json() -> Any:
        value = predictor.predict(payload=json.loads(body))
        return value.encode("utf-8") if isinstance(value, str) else json.dumps(value).encode("utf-8")

    bare = timed(lambda: predictor.predict(payload=obj), args.seconds / 2)
    full = timed(with_json, args.seconds / 2)
    print(json.dumps({"predict_us": bare["us"], "with_json_us": full["us"], "calls": bare["calls"] + full["calls"]}))


if __name__ == "__main__":
    main()
