"""A Cortex 0.25 PythonPredictor serving several models with python_client (multi_model_reloading).

POST a flower to /iris-multi?model=iris (latest version), ?model=iris&version=1, or ?model=tree.
"""
import os
import pickle

LABELS = ["setosa", "versicolor", "virginica"]


class PythonPredictor:
    def __init__(self, config, python_client):
        self.client = python_client

    def load_model(self, model_path):
        # Called once per model version this process needs (cache_size 1: one in memory at a time).
        with open(os.path.join(model_path, "model.pkl"), "rb") as f:
            return pickle.load(f)

    def predict(self, payload, query_params):
        model = self.client.get_model(query_params.get("model"), query_params.get("version", "latest"))
        row = [[payload["sepal_length"], payload["sepal_width"], payload["petal_length"], payload["petal_width"]]]
        probabilities = model.predict_proba(row)[0]
        best = int(probabilities.argmax())
        return {"label": LABELS[best], "probability": round(float(probabilities[best]), 3)}
