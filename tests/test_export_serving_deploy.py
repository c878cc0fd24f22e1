"""The TF Serving deployment in export/serving: its configs parse as TF Serving reads them, and its
smoke script (export/serving/smoke.py) passes against a served draw-tf SavedModel.

The smoke script runs against a real TF Serving when one is available here (a
`tensorflow_model_server` binary on the PATH, or a running docker daemon for docker-compose.yml),
and always against the stand-ins of tests/test_serving_client.py: an HTTP server with TF Serving's
REST JSON mapping and a real gRPC PredictionService, both calling the loaded SavedModel. The
stand-ins here also answer the model metadata requests (REST GET .../metadata, gRPC
GetModelMetadata) with the SavedModel's signature defs, as TF Serving does, since the smoke script
reads T and z_size from them.
"""

import http.server
import importlib.util
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from concurrent import futures

import numpy as np
import pytest
import tensorflow as tf

from draw_tf import Draw, DrawConfig
from draw_tf.export import SIGNATURES, export_saved_model

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SERVING = os.path.join(REPO, "export", "serving")
CONFIG = DrawConfig(  # small and rectangular with two channels, as in test_serving_client
    image_height=12, image_width=10, channels=2, time_steps=3,
    encoder_size=16, decoder_size=12, z_size=4, read_size=3, write_size=4,
)


def _load(path, name):
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(name, path)
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
    return sys.modules[name]


smoke = _load(os.path.join(SERVING, "smoke.py"), "draw_tf_serving_smoke")
# The REST mapping and signature calls of the existing stand-ins (tests/ is on sys.path under pytest).
stand_in = _load(os.path.join(REPO, "tests", "test_serving_client.py"), "test_serving_client")


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    model = Draw(CONFIG, seed=0)
    rng = np.random.default_rng(0)
    for w in model.trainable_weights:  # not the initial weights: every head matters
        w.assign(w.numpy() + rng.normal(scale=0.3 / np.sqrt(max(w.shape[0], 1)), size=w.shape).astype(np.float32))
    export_dir = str(tmp_path_factory.mktemp("serving"))
    path = export_saved_model(model, export_dir, "draw")
    return export_dir, path


def _metadata_response(saved_model_path, version):
    """TF Serving's GetModelMetadataResponse for the SavedModel: its signature defs, packed."""
    from tensorflow.core.protobuf import saved_model_pb2
    from tensorflow_serving.apis import get_model_metadata_pb2

    saved = saved_model_pb2.SavedModel()
    with open(os.path.join(saved_model_path, "saved_model.pb"), "rb") as f:
        saved.ParseFromString(f.read())
    signature_map = get_model_metadata_pb2.SignatureDefMap()
    for name, signature in saved.meta_graphs[0].signature_def.items():
        signature_map.signature_def[name].CopyFrom(signature)
    response = get_model_metadata_pb2.GetModelMetadataResponse()
    response.model_spec.name = "draw"
    response.model_spec.version.value = version
    response.metadata["signature_def"].Pack(signature_map)
    return response


@pytest.fixture(scope="module")
def stand_ins(exported):
    """(rest_port, grpc_port, handler class) of the stand-in servers for the exported model."""
    import grpc
    from google.protobuf import json_format
    from tensorflow_serving.apis import predict_pb2, prediction_service_pb2_grpc

    path = exported[1]
    signatures = tf.saved_model.load(path).signatures
    metadata = _metadata_response(path, int(os.path.basename(path)))
    # TF Serving prints REST metadata with the proto field names (signature_def, tensor_shape).
    metadata_json = json_format.MessageToJson(metadata, preserving_proto_field_name=True).encode()

    class Handler(http.server.BaseHTTPRequestHandler):
        corrupt = False  # a broken server, to show that the smoke script notices

        def _reply(self, status, data):
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_GET(self):
            if re.fullmatch(r"/v1/models/draw(/versions/1)?/metadata", self.path):
                self._reply(200, metadata_json)
            else:
                self._reply(404, json.dumps({"error": f"no route {self.path}"}).encode())

        def do_POST(self):
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            if not re.fullmatch(r"/v1/models/draw(/versions/1)?:predict", self.path):
                return self._reply(404, json.dumps({"error": f"no route {self.path}"}).encode())
            status, reply = stand_in._rest_predict(signatures, body)
            if self.corrupt and status == 200 and isinstance(reply.get("predictions"), list):
                reply["predictions"] = (np.asarray(reply["predictions"]) * 2.0).tolist()  # images beyond 1
            self._reply(status, json.dumps(reply).encode())

        def log_message(self, *args):
            pass

    class PredictionService(prediction_service_pb2_grpc.PredictionServiceServicer):
        def Predict(self, request, context):
            arrays = {k: tf.make_ndarray(v) for k, v in request.inputs.items()}
            response = predict_pb2.PredictResponse()
            response.model_spec.CopyFrom(request.model_spec)
            for key, value in stand_in._call(signatures, request.model_spec.signature_name or "serving_default", arrays).items():
                response.outputs[key].CopyFrom(tf.make_tensor_proto(value))
            return response

        def GetModelMetadata(self, request, context):
            return metadata

    rest = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=rest.serve_forever, daemon=True)
    thread.start()
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=2))
    prediction_service_pb2_grpc.add_PredictionServiceServicer_to_server(PredictionService(), server)
    grpc_port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    yield rest.server_address[1], grpc_port, Handler
    server.stop(None)
    rest.shutdown()
    rest.server_close()


def _assert_passed(report):
    assert report["ok"], json.dumps(report["failed"], indent=2)
    names = {r["check"] for r in report["results"]} if "results" in report else set()
    for transport in report["transports"]:
        for signature in SIGNATURES:
            if names:
                assert any(n.startswith(f"{transport}/{signature}:") for n in names), (transport, signature)


def test_smoke_script_passes_against_the_stand_in_servers(stand_ins):
    rest_port, grpc_port, _ = stand_ins
    report = smoke.run_smoke("127.0.0.1", rest_port, grpc_port, version=1)
    _assert_passed(report)
    assert (report["time_steps"], report["z_size"]) == (CONFIG.time_steps, CONFIG.z_size)
    assert report["shape_from"] == "REST metadata"
    assert any(r["check"].startswith("rest vs grpc") for r in report["results"])
    grpc_only = smoke.run_smoke("127.0.0.1", rest_port, grpc_port, transports=["grpc"])
    _assert_passed(grpc_only)
    assert grpc_only["shape_from"] == "gRPC metadata" and grpc_only["z_size"] == CONFIG.z_size


def test_smoke_script_command_line(stand_ins):
    rest_port, grpc_port, _ = stand_ins
    command = [
        sys.executable, os.path.join(SERVING, "smoke.py"), "--host=127.0.0.1", f"--rest_port={rest_port}",
        f"--grpc_port={grpc_port}", f"--time_steps={CONFIG.time_steps}", f"--z_size={CONFIG.z_size}",
    ]
    result = subprocess.run(command, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr
    report = json.loads(result.stdout)
    assert report["ok"] and report["shape_from"] == "arguments" and report["checks"] > 40


def test_smoke_script_fails_on_a_broken_server(stand_ins):
    rest_port, grpc_port, handler = stand_ins
    handler.corrupt = True
    try:
        report = smoke.run_smoke("127.0.0.1", rest_port, grpc_port, transports=["rest"])
    finally:
        handler.corrupt = False
    assert not report["ok"]
    failed = {r["check"] for r in report["failed"]}
    assert "rest/serving_default: images in [0, 1]" in failed
    with pytest.raises(ValueError, match="both time_steps and z_size"):
        smoke.run_smoke(time_steps=3)


# -- the configuration files ------------------------------------------------------------------------

# tensorflow.serving.BatchingParameters as declared in TF Serving's
# tensorflow_serving/servables/tensorflow/session_bundle_config.proto (fields 1-7), for when its
# generated module is not installed (tensorflow-serving-api ships the config and API protos only).
BATCHING_FIELDS = (
    ("max_batch_size", 1, "Int64Value"), ("batch_timeout_micros", 2, "Int64Value"),
    ("max_enqueued_batches", 3, "Int64Value"), ("num_batch_threads", 4, "Int64Value"),
    ("thread_pool_name", 5, "StringValue"), ("allowed_batch_sizes", 6, "repeated int64"),
    ("pad_variable_length_inputs", 7, "bool"),
)


def _batching_parameters_class():
    try:
        from tensorflow_serving.servables.tensorflow import session_bundle_config_pb2

        return session_bundle_config_pb2.BatchingParameters
    except ImportError:
        pass
    from google.protobuf import descriptor_pb2, descriptor_pool, message_factory, wrappers_pb2

    pool = descriptor_pool.DescriptorPool()
    wrappers = descriptor_pb2.FileDescriptorProto()
    wrappers_pb2.DESCRIPTOR.CopyToProto(wrappers)
    pool.Add(wrappers)
    f = descriptor_pb2.FileDescriptorProto(
        name="session_bundle_config_batching.proto", package="tensorflow.serving",
        dependency=["google/protobuf/wrappers.proto"], syntax="proto3",
    )
    message = f.message_type.add(name="BatchingParameters")
    F = descriptor_pb2.FieldDescriptorProto
    for name, number, kind in BATCHING_FIELDS:
        field = message.field.add(name=name, number=number, label=F.LABEL_OPTIONAL)
        if kind.startswith("repeated"):
            field.label, field.type = F.LABEL_REPEATED, F.TYPE_INT64
        elif kind == "bool":
            field.type = F.TYPE_BOOL
        else:
            field.type, field.type_name = F.TYPE_MESSAGE, f".google.protobuf.{kind}"
    pool.Add(f)
    return message_factory.GetMessageClass(pool.FindMessageTypeByName("tensorflow.serving.BatchingParameters"))


def _read(name):
    with open(os.path.join(SERVING, name)) as f:
        return f.read()


def test_models_config_parses_as_a_model_server_config():
    from google.protobuf import text_format
    from tensorflow_serving.config import model_server_config_pb2

    config = text_format.Parse(_read("models.config"), model_server_config_pb2.ModelServerConfig())
    (model,) = config.model_config_list.config
    assert model.name == "draw" and model.base_path == "/models/draw" and model.model_platform == "tensorflow"
    assert model.model_version_policy.WhichOneof("policy_choice") == "latest"
    assert model.model_version_policy.latest.num_versions == 1


def test_batching_config_parses_as_batching_parameters():
    from google.protobuf import text_format

    params = text_format.Parse(_read("batching.config"), _batching_parameters_class()())
    assert params.max_batch_size.value >= 1 and params.num_batch_threads.value >= 1
    assert params.batch_timeout_micros.value > 0 and params.max_enqueued_batches.value >= 1
    sizes = list(params.allowed_batch_sizes)
    if sizes:  # TF Serving's requirements: increasing, and the last one is max_batch_size
        assert sizes == sorted(set(sizes)) and sizes[-1] == params.max_batch_size.value


def test_docker_compose_serves_both_ports_with_the_configs():
    yaml = pytest.importorskip("yaml", reason="no yaml module (pip install pyyaml) to parse docker-compose.yml")
    from google.protobuf import text_format
    from tensorflow_serving.config import model_server_config_pb2

    compose = yaml.safe_load(_read("docker-compose.yml"))
    (service,) = compose["services"].values()
    assert service["image"].split(":")[0].endswith("tensorflow/serving")
    flags = dict(arg.lstrip("-").split("=", 1) for arg in service["command"])
    assert flags["port"] == "8500" and flags["rest_api_port"] == "8501" and flags["enable_batching"] == "true"
    container_ports = {p.split(":")[-1] for p in service["ports"]}
    assert container_ports == {"8500", "8501"}
    # host:container[:mode]; the host part may hold ${VAR:-default}, itself with a colon
    volumes = [re.fullmatch(r"(.+):(/[^:]*)(?::(?:ro|rw))?", v).groups() for v in service["volumes"]]
    mounts = {container: host for host, container in volumes}
    assert mounts[flags["model_config_file"]].endswith("models.config")
    assert mounts[flags["batching_parameters_file"]].endswith("batching.config")
    config = text_format.Parse(_read("models.config"), model_server_config_pb2.ModelServerConfig())
    assert any(config.model_config_list.config[0].base_path.startswith(target + "/") for target in mounts)


# -- a real TF Serving, when one is available ---------------------------------------------------------


def _docker_compose():
    """The docker compose command when a docker daemon answers, else None."""
    if not shutil.which("docker"):
        return None
    if subprocess.run(["docker", "info"], capture_output=True, timeout=30).returncode != 0:
        return None
    if subprocess.run(["docker", "compose", "version"], capture_output=True, timeout=30).returncode == 0:
        return ["docker", "compose"]
    return ["docker-compose"] if shutil.which("docker-compose") else None


def _wait_until_available(rest_port, process=None, timeout=600):
    url = f"http://127.0.0.1:{rest_port}/v1/models/draw"
    deadline = time.time() + timeout
    while time.time() < deadline:
        if process is not None and process.poll() is not None:
            raise RuntimeError(f"tensorflow_model_server exited with {process.returncode}")
        try:
            with urllib.request.urlopen(url, timeout=5) as response:
                states = [v["state"] for v in json.load(response).get("model_version_status", [])]
                if "AVAILABLE" in states:
                    return
        except OSError:
            pass
        time.sleep(1)
    raise TimeoutError(f"TF Serving did not make the model AVAILABLE at {url} within {timeout} s")


def test_smoke_script_passes_against_a_real_tf_serving(exported, tmp_path):
    from google.protobuf import text_format
    from tensorflow_serving.config import model_server_config_pb2

    export_dir = exported[0]
    rest_port, grpc_port = _free_port(), _free_port()
    binary = shutil.which("tensorflow_model_server")
    if binary:
        config = text_format.Parse(_read("models.config"), model_server_config_pb2.ModelServerConfig())
        config.model_config_list.config[0].base_path = os.path.join(export_dir, "draw")
        config_path = tmp_path / "models.config"
        config_path.write_text(text_format.MessageToString(config))
        log = open(tmp_path / "server.log", "w")
        process = subprocess.Popen(
            [binary, f"--port={grpc_port}", f"--rest_api_port={rest_port}", f"--model_config_file={config_path}",
             "--enable_batching=true", f"--batching_parameters_file={os.path.join(SERVING, 'batching.config')}"],
            stdout=log, stderr=subprocess.STDOUT,
        )
        try:
            _wait_until_available(rest_port, process)
            _assert_passed(smoke.run_smoke("127.0.0.1", rest_port, grpc_port))
        finally:
            process.terminate()
            process.wait(timeout=60)
            log.close()
        return
    compose = _docker_compose()
    if compose is None:
        pytest.skip(
            "no real TF Serving here: no tensorflow_model_server binary on the PATH and no docker daemon "
            "(docker info fails) to run export/serving/docker-compose.yml; the smoke script ran against the stand-ins"
        )
    env = {**os.environ, "DRAW_TF_MODELS": export_dir, "DRAW_TF_REST_PORT": str(rest_port), "DRAW_TF_GRPC_PORT": str(grpc_port)}
    project = ["-f", os.path.join(SERVING, "docker-compose.yml"), "-p", f"drawtf-smoke-{os.getpid()}"]
    subprocess.run([*compose, *project, "up", "-d"], env=env, check=True, timeout=1800)
    try:
        _wait_until_available(rest_port)
        _assert_passed(smoke.run_smoke("127.0.0.1", rest_port, grpc_port))
    finally:
        subprocess.run([*compose, *project, "down"], env=env, timeout=300)
