"""The trivial PythonPredictor of benchmarks/python-bridge.bench.ts: answers the payload it was given,
so a request through the bridge costs framing, the pipes and JSON, and no model."""


class PythonPredictor:
    """``predict`` returns ``payload`` unchanged (JSON in, the same JSON out)."""

    def __init__(self, config):
        self.config = config

    def predict(self, payload):
        return payload
