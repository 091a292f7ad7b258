# A legacy request handler: pre_inference shapes the request for the model, post_inference the response.
labels = ["setosa", "versicolor", "virginica"]


def pre_inference(sample, metadata):
    return {metadata[0].name: [[sample["sepal_length"], sample["sepal_width"], sample["petal_length"], sample["petal_width"]]]}


def post_inference(prediction, metadata):
    return {"class_label": labels[int(prediction[0][0])]}
