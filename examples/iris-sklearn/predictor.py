"""A Cortex PythonPredictor: an iris classifier trained at start from scikit-learn's bundled data set."""
from sklearn.datasets import load_iris
from sklearn.linear_model import LogisticRegression

labels = ["setosa", "versicolor", "virginica"]


class PythonPredictor:
    def __init__(self, config):
        iris = load_iris()
        self.model = LogisticRegression(C=float(config.get("C", 1.0)), max_iter=1000)
        self.model.fit(iris.data, iris.target)

    def predict(self, payload):
        measurements = [
            payload["sepal_length"],
            payload["sepal_width"],
            payload["petal_length"],
            payload["petal_width"],
        ]
        label_id = self.model.predict([measurements])[0]
        return labels[label_id]
