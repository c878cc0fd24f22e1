"""Clients for a draw-tf SavedModel served by TensorFlow Serving: REST (`:predict`) and gRPC.

REST, e.g. `docker run -p 8501:8501 -v $PWD/serving/draw:/models/draw -e MODEL_NAME=draw tensorflow/serving`:

    from draw_tf.export import serving_client
    out = serving_client.predict_rest({"seed": [1, 2, 3]}, signature_name="sample")
    out["images"].shape  # (3, 28, 28, 1)

gRPC (port 8500, `pip install tensorflow-serving-api`):

    out = serving_client.predict_grpc({"z": z}, signature_name="generate")

Requests take a dict {input name: array with the batch first}; responses come back as a dict
{output name: numpy array}. Integer inputs are sent as int64 and floating ones as float32, the
dtypes of the draw-tf signatures (see `draw_tf.export.saved_model`).
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request

import numpy as np

REST_FORMATS = ("instances", "inputs")


def _as_signature_dtype(name, value):
    array = np.asarray(value)
    if array.dtype == object or not (np.issubdtype(array.dtype, np.number) or array.dtype == bool):
        raise ValueError(f"Input {name!r} must be numeric, received dtype {array.dtype}.")
    if array.ndim == 0:
        raise ValueError(f"Input {name!r} must have a batch dimension first, received a scalar.")
    return array.astype(np.int64 if np.issubdtype(array.dtype, np.integer) else np.float32)


def _check_inputs(inputs):
    if not isinstance(inputs, dict) or not inputs:
        raise ValueError(f"inputs must be a non-empty dict {{input name: array}}, received {type(inputs).__name__}.")
    arrays = {name: _as_signature_dtype(name, value) for name, value in inputs.items()}
    batches = {name: a.shape[0] for name, a in arrays.items()}
    if len(set(batches.values())) != 1:
        raise ValueError(f"Every input must have the same batch size (first dimension), received {batches}.")
    return arrays


# -- REST -----------------------------------------------------------------------------------------


def rest_url(host="localhost", port=8501, model_name="draw", version=None):
    """TF Serving's predict URL: http://host:port/v1/models/<name>[/versions/<v>]:predict."""
    version_part = "" if version is None else f"/versions/{int(version)}"
    return f"http://{host}:{port}/v1/models/{model_name}{version_part}:predict"


def rest_request(inputs, signature_name="serving_default", format="instances"):
    """The JSON body (a dict) of a `:predict` request.

    `instances` is TF Serving's row format (one object per image, batchable by the server);
    `inputs` is the columnar format (one list per input).
    """
    if format not in REST_FORMATS:
        raise ValueError(f"format must be one of {list(REST_FORMATS)}, received {format!r}.")
    arrays = _check_inputs(inputs)
    body = {"signature_name": signature_name}
    if format == "instances":
        batch = next(iter(arrays.values())).shape[0]
        body["instances"] = [{name: a[i].tolist() for name, a in arrays.items()} for i in range(batch)]
    else:
        body["inputs"] = {name: a.tolist() for name, a in arrays.items()}
    return body


def parse_rest_response(body, output_names=("images",)):
    """{output name: numpy array} from a `:predict` response body (either format).

    TF Serving leaves out the output name when a signature has a single output; it is then taken
    from `output_names` (the draw-tf signatures with one output call it `images`).
    """
    if isinstance(body, (str, bytes)):
        body = json.loads(body)
    if "error" in body:
        raise RuntimeError(f"TF Serving returned an error: {body['error']}")
    if "predictions" in body:
        rows = body["predictions"]
        if rows and isinstance(rows[0], dict):
            return {name: np.asarray([row[name] for row in rows], np.float32) for name in rows[0]}
        return {output_names[0]: np.asarray(rows, np.float32)}
    if "outputs" in body:
        outputs = body["outputs"]
        if isinstance(outputs, dict):
            return {name: np.asarray(value, np.float32) for name, value in outputs.items()}
        return {output_names[0]: np.asarray(outputs, np.float32)}
    raise ValueError(f"Not a TF Serving predict response: expected 'predictions' or 'outputs', received keys {sorted(body)}.")


def predict_rest(
    inputs, signature_name="serving_default", host="localhost", port=8501, model_name="draw", version=None,
    format="instances", output_names=("images",), timeout=60.0,
):
    """POSTs a `:predict` request to TF Serving's REST API and returns {output name: array}."""
    data = json.dumps(rest_request(inputs, signature_name, format)).encode()
    request = urllib.request.Request(
        rest_url(host, port, model_name, version), data=data, headers={"Content-Type": "application/json"}
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return parse_rest_response(response.read(), output_names)
    except urllib.error.HTTPError as e:  # TF Serving puts its message in the body
        raise RuntimeError(f"TF Serving answered HTTP {e.code}: {e.read().decode(errors='replace')}") from e


# -- gRPC -----------------------------------------------------------------------------------------


def grpc_request(inputs, signature_name="serving_default", model_name="draw", version=None):
    """A `tensorflow_serving.apis.predict_pb2.PredictRequest` for the inputs."""
    import tensorflow as tf
    from tensorflow_serving.apis import predict_pb2

    request = predict_pb2.PredictRequest()
    request.model_spec.name = model_name
    request.model_spec.signature_name = signature_name
    if version is not None:
        request.model_spec.version.value = int(version)
    for name, array in _check_inputs(inputs).items():
        request.inputs[name].CopyFrom(tf.make_tensor_proto(array))
    return request


def parse_grpc_response(response):
    """{output name: numpy array} from a `PredictResponse`."""
    import tensorflow as tf

    return {name: tf.make_ndarray(proto) for name, proto in response.outputs.items()}


def predict_grpc(
    inputs, signature_name="serving_default", host="localhost", port=8500, model_name="draw", version=None,
    timeout=60.0,
):
    """Calls TF Serving's gRPC `PredictionService.Predict`; returns {output name: array}."""
    import grpc
    from tensorflow_serving.apis import prediction_service_pb2_grpc

    request = grpc_request(inputs, signature_name, model_name, version)
    options = [("grpc.max_receive_message_length", 64 * 1024 * 1024)]  # canvas sequences are large
    with grpc.insecure_channel(f"{host}:{port}", options=options) as channel:
        stub = prediction_service_pb2_grpc.PredictionServiceStub(channel)
        return parse_grpc_response(stub.Predict(request, timeout=timeout))
