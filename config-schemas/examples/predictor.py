# Cortex's PythonPredictor interface, as in Cortex 0.23's examples/pytorch/iris-classifier.
import boto3
import torch

labels = ["setosa", "versicolor", "virginica"]


class PythonPredictor:
    def __init__(self, config):
        s3 = boto3.client("s3")
        bucket, key = config["model"][len("s3://"):].split("/", 1)
        s3.download_file(bucket, key, "/tmp/model.pth")
        self.model = torch.load("/tmp/model.pth")
        self.model.eval()

    def predict(self, payload):
        features = [payload["sepal_length"], payload["sepal_width"], payload["petal_length"], payload["petal_width"]]
        output = self.model(torch.FloatTensor([features]))
        return labels[int(torch.argmax(output[0]))]
