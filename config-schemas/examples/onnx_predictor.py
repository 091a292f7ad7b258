# Cortex's ONNXPredictor interface (Cortex 0.23).
class ONNXPredictor:
    def __init__(self, onnx_client, config):
        self.client = onnx_client
        self.config = config

    def predict(self, payload, query_params):
        return self.client.predict(payload, query_params.get("model"))
