"""Writes the example's models: models/<name>/<version>/model.pkl, scikit-learn iris classifiers.

Run from this folder with ``python3 generate_models.py`` (needs scikit-learn); the committed files are
its output. ``iris`` has two versions (a heavily regularised one, then a sharper one), ``tree`` one.
"""
import os
import pickle

from sklearn.datasets import load_iris
from sklearn.linear_model import LogisticRegression
from sklearn.tree import DecisionTreeClassifier

MODELS = {
    ("iris", "1"): LogisticRegression(C=0.01, max_iter=1000),
    ("iris", "2"): LogisticRegression(C=10.0, max_iter=1000),
    ("tree", "1"): DecisionTreeClassifier(max_depth=2, random_state=0),
}


def main() -> None:
    iris = load_iris()
    here = os.path.dirname(os.path.abspath(__file__))
    for (name, version), model in MODELS.items():
        model.fit(iris.data, iris.target)
        folder = os.path.join(here, "models", name, version)
        os.makedirs(folder, exist_ok=True)
        with open(os.path.join(folder, "model.pkl"), "wb") as f:
            pickle.dump(model, f, protocol=4)
        print(f"wrote models/{name}/{version}/model.pkl")


if __name__ == "__main__":
    main()
