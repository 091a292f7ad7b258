# Cortex's TensorFlowPredictor interface (Cortex 0.23).
labels = ["setosa", "versicolor", "virginica"]


class TensorFlowPredictor:
    def __init__(self, tensorflow_client, config):
        self.client = tensorflow_client

    def predict(self, payload, query_params):
        model_name = query_params.get("model")
        prediction = self.client.predict(payload, model_name)
        return labels[int(prediction["class_ids"][0])]
