"""A Cortex ONNXPredictor for benchmarks/python-bridge.bench.ts: the Python twin of
examples/iris-onnx/predictor.ts, run through myelin's Python bridge (``predictor.type: onnx`` with this
``.py`` as ``path`` and examples/iris-onnx/model/iris.onnx as ``model_path``).

``{"sepal_length": 5.2, "sepal_width": 3.6, "petal_length": 1.4, "petal_width": 0.3}`` →
``{"label": "setosa", "probabilities": {"setosa": …, "versicolor": …, "virginica": …}}``: one row of
four float32 measurements goes to ``onnx_client.predict``, which answers the model's outputs in order
(``label`` int64 [batch], ``probabilities`` float32 [batch, 3]) as numpy arrays.
"""

FEATURES = ("sepal_length", "sepal_width", "petal_length", "petal_width")


class ONNXPredictor:
    """Builds the same input as the TypeScript predictor and answers the same JSON."""

    def __init__(self, onnx_client, config):
        self.client = onnx_client
        self.labels = list(config.get("labels") or ["setosa", "versicolor", "virginica"])

    def predict(self, payload):
        row = [float(payload[f]) for f in FEATURES]
        label, probabilities = self.client.predict([row])
        return {
            "label": self.labels[int(label[0])],
            "probabilities": {name: float(p) for name, p in zip(self.labels, probabilities[0])},
        }
