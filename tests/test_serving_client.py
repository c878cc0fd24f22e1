"""The TF Serving clients against the exported signatures.

TF Serving itself cannot be installed here, so two small local servers stand in for it: an HTTP
server that maps `:predict` JSON to signature calls as TF Serving's REST API documents
(https://www.tensorflow.org/tfx/serving/api_rest: row format `instances` -> `predictions`, columnar
`inputs` -> `outputs`, the output name left out when a signature has one output), and a real gRPC
server implementing `tensorflow.serving.PredictionService/Predict` with the `tensorflow-serving-api`
protos. Both run the SavedModel loaded by `tf.saved_model.load`, as TF Serving runs it.
"""

import http.server
import json
import re
import threading
from concurrent import futures

import numpy as np
import pytest
import tensorflow as tf

from draw_tf import Draw
from draw_tf.export import export_saved_model, serving_client


@pytest.fixture(scope="module")
def signatures(tmp_path_factory, tiny_config):
    model = Draw(tiny_config, seed=0)
    path = export_saved_model(model, str(tmp_path_factory.mktemp("serving")), "draw")
    return model, tf.saved_model.load(path).signatures


def _call(signatures, name, arrays):
    fn = signatures[name]
    specs = fn.structured_input_signature[1]
    return {k: v.numpy() for k, v in fn(**{k: tf.constant(v, specs[k].dtype) for k, v in arrays.items()}).items()}


def _rest_predict(signatures, body):
    """TF Serving's REST `:predict` mapping, on the loaded signatures."""
    name = body.get("signature_name", "serving_default")
    if name not in signatures:
        return 400, {"error": f"Serving signature name: \"{name}\" not found in signature def"}
    if "instances" in body:
        rows = body["instances"]
        arrays = {k: np.asarray([row[k] for row in rows]) for k in rows[0]}
    else:
        arrays = {k: np.asarray(v) for k, v in body["inputs"].items()}
    try:
        out = _call(signatures, name, arrays)
    except (tf.errors.InvalidArgumentError, TypeError, ValueError) as e:
        return 400, {"error": getattr(e, "message", str(e))}
    single = len(out) == 1
    if "instances" in body:
        batch = len(next(iter(out.values())))
        if single:
            return 200, {"predictions": next(iter(out.values())).tolist()}
        return 200, {"predictions": [{k: v[i].tolist() for k, v in out.items()} for i in range(batch)]}
    return 200, {"outputs": next(iter(out.values())).tolist() if single else {k: v.tolist() for k, v in out.items()}}


@pytest.fixture(scope="module")
def rest_server(signatures):
    sigs = signatures[1]

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_POST(self):
            match = re.fullmatch(r"/v1/models/draw(/versions/1)?:predict", self.path)
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            status, reply = _rest_predict(sigs, body) if match else (404, {"error": f"no route {self.path}"})
            data = json.dumps(reply).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server.server_address[1]
    server.shutdown()
    server.server_close()


@pytest.fixture(scope="module")
def grpc_server(signatures):
    import grpc
    from tensorflow_serving.apis import predict_pb2, prediction_service_pb2_grpc

    sigs = signatures[1]

    class PredictionService(prediction_service_pb2_grpc.PredictionServiceServicer):
        def Predict(self, request, context):
            assert request.model_spec.name == "draw"
            arrays = {k: tf.make_ndarray(v) for k, v in request.inputs.items()}
            response = predict_pb2.PredictResponse()
            response.model_spec.CopyFrom(request.model_spec)
            for key, value in _call(sigs, request.model_spec.signature_name or "serving_default", arrays).items():
                response.outputs[key].CopyFrom(tf.make_tensor_proto(value))
            return response

    server = grpc.server(futures.ThreadPoolExecutor(max_workers=2))
    prediction_service_pb2_grpc.add_PredictionServiceServicer_to_server(PredictionService(), server)
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    yield port
    server.stop(None)


def _requests(model):
    cfg = model.config
    rng = np.random.default_rng(0)
    return [
        ("serving_default", {"seed": [4, 9]}),
        ("sample_sequences", {"seed": np.array([4, 9, 4])}),
        ("generate", {"z": rng.standard_normal((2, cfg.time_steps, cfg.z_size))}),
        ("reconstruct", {"images": (rng.random((3, *cfg.image_shape)) > 0.5).astype(np.float32)}),
    ]


@pytest.mark.parametrize("format", serving_client.REST_FORMATS)
def test_rest_client_round_trip(signatures, rest_server, format):
    model, sigs = signatures
    for name, inputs in _requests(model):
        expected = _call(sigs, name, {k: np.asarray(v) for k, v in inputs.items()})
        out = serving_client.predict_rest(inputs, name, port=rest_server, format=format, version=1)
        assert set(out) == set(expected), name
        for key in expected:
            np.testing.assert_allclose(out[key], expected[key], rtol=1e-6, atol=1e-6, err_msg=f"{name}/{key}")


def test_rest_request_formats():
    body = serving_client.rest_request({"seed": [1, 2]}, "sample")
    assert body == {"signature_name": "sample", "instances": [{"seed": 1}, {"seed": 2}]}
    body = serving_client.rest_request({"seed": [1, 2]}, "sample", format="inputs")
    assert body == {"signature_name": "sample", "inputs": {"seed": [1, 2]}}
    assert serving_client.rest_url("h", 1, "draw", 3) == "http://h:1/v1/models/draw/versions/3:predict"
    with pytest.raises(ValueError, match="same batch size"):
        serving_client.rest_request({"a": [1, 2], "b": [1]})
    with pytest.raises(ValueError, match="format must be one of"):
        serving_client.rest_request({"seed": [1]}, format="rows")


def test_rest_errors_are_raised_with_the_servers_message(signatures, rest_server):
    model = signatures[0]
    bad = np.full((1, *model.config.image_shape), 255.0, np.float32)
    with pytest.raises(RuntimeError, match=r"HTTP 400.*\[0, 1\]"):
        serving_client.predict_rest({"images": bad}, "reconstruct", port=rest_server)
    with pytest.raises(RuntimeError, match="not found"):
        serving_client.predict_rest({"seed": [1]}, "no_such_signature", port=rest_server)


def test_grpc_client_round_trip(signatures, grpc_server):
    model, sigs = signatures
    for name, inputs in _requests(model):
        expected = _call(sigs, name, {k: np.asarray(v) for k, v in inputs.items()})
        out = serving_client.predict_grpc(inputs, name, port=grpc_server)
        assert set(out) == set(expected), name
        for key in expected:
            np.testing.assert_array_equal(out[key], expected[key], err_msg=f"{name}/{key}")


def test_grpc_request_dtypes_match_the_signatures():
    request = serving_client.grpc_request({"seed": [1, 2]}, "sample", version=2)
    assert request.model_spec.signature_name == "sample" and request.model_spec.version.value == 2
    assert request.inputs["seed"].dtype == tf.int64.as_datatype_enum
    request = serving_client.grpc_request({"z": np.zeros((1, 3, 4))}, "generate")
    assert request.inputs["z"].dtype == tf.float32.as_datatype_enum
    assert [d.size for d in request.inputs["z"].tensor_shape.dim] == [1, 3, 4]
