"""Smoke test of a draw-tf model served by TensorFlow Serving: every signature, over REST and gRPC.

    python export/serving/smoke.py                       # localhost, REST 8501, gRPC 8500, model "draw"
    python export/serving/smoke.py --host=server --rest_port=8501 --grpc_port=8500 --version=2
    python export/serving/smoke.py --transports=rest --time_steps=64 --z_size=100

It calls serving_default, sample, sample_sequences, generate, generate_sequences and reconstruct
(see draw_tf/export/saved_model.py) with the project's client (draw_tf.export.serving_client) and
checks shapes, ranges (images, canvases and reconstructions in [0, 1], a finite positive bound),
that the same seed or noise gives the same image, that different seeds give different images,
that `sample` and `serving_default` agree, that the sequences end on the final image, and that
REST and gRPC answer alike. T and z_size (for the noise of `generate`) come from the model's
metadata (REST GET .../metadata, or gRPC GetModelMetadata) unless --time_steps and --z_size are
given. Prints a JSON report; exits 1 if any check fails.
"""

from __future__ import annotations

import argparse
import json
import sys
import urllib.request

import numpy as np

SIGNATURES = ("serving_default", "sample", "sample_sequences", "generate", "generate_sequences", "reconstruct")
TRANSPORTS = ("rest", "grpc")
# REST carries float32 values as JSON decimal text; TF Serving prints them with enough digits to
# round-trip, but allow for a server that does not.
ACROSS_TRANSPORTS_ATOL = 1e-5
# "The same image" for the same seed or noise: equal up to float32 rounding. A row's last bit can
# depend on its position in the batch (the matmul kernels block rows), and with server-side
# batching the same request may land at another position; 1e-6 is ~8 ulp of values in [0, 1].
SAME_ATOL = 1e-6


class SmokeFailure(AssertionError):
    pass


def _metadata_url(host, port, model_name, version):
    version_part = "" if version is None else f"/versions/{int(version)}"
    return f"http://{host}:{port}/v1/models/{model_name}{version_part}/metadata"


def _shape_from_signature_defs(signature_defs):
    dims = signature_defs["generate"]["inputs"]["z"]["tensor_shape"]["dim"]
    return int(dims[1]["size"]), int(dims[2]["size"])


def model_shape_rest(host, port, model_name="draw", version=None, timeout=60.0):
    """(T, z_size) from TF Serving's REST metadata (`GET /v1/models/<name>/metadata`)."""
    with urllib.request.urlopen(_metadata_url(host, port, model_name, version), timeout=timeout) as response:
        body = json.load(response)
    return _shape_from_signature_defs(body["metadata"]["signature_def"]["signature_def"])


def model_shape_grpc(host, port, model_name="draw", version=None, timeout=60.0):
    """(T, z_size) from gRPC `PredictionService.GetModelMetadata`."""
    import grpc
    from tensorflow_serving.apis import get_model_metadata_pb2, prediction_service_pb2_grpc

    request = get_model_metadata_pb2.GetModelMetadataRequest()
    request.model_spec.name = model_name
    if version is not None:
        request.model_spec.version.value = int(version)
    request.metadata_field.append("signature_def")
    with grpc.insecure_channel(f"{host}:{port}") as channel:
        response = prediction_service_pb2_grpc.PredictionServiceStub(channel).GetModelMetadata(request, timeout=timeout)
    signature_map = get_model_metadata_pb2.SignatureDefMap()
    response.metadata["signature_def"].Unpack(signature_map)
    dims = signature_map.signature_def["generate"].inputs["z"].tensor_shape.dim
    return int(dims[1].size), int(dims[2].size)


class Checks:
    def __init__(self):
        self.results = []

    def check(self, name, ok, detail=""):
        self.results.append({"check": name, "ok": bool(ok), **({"detail": detail} if detail and not ok else {})})
        return bool(ok)

    def failures(self):
        return [r for r in self.results if not r["ok"]]


def _same(a, b):
    return a.shape == b.shape and bool(np.allclose(a, b, rtol=0, atol=SAME_ATOL))


def _diff(a, b):
    return float(np.abs(a - b).max()) if a.shape == b.shape else f"shapes {a.shape} != {b.shape}"


def _in_unit_range(a):
    return bool(np.all(np.isfinite(a)) and a.min() >= 0.0 and a.max() <= 1.0)


def _smoke_transport(predict, transport, checks, time_steps, z_size):
    """Calls every signature through `predict(inputs, signature_name)`; returns outputs for the
    cross-transport comparison."""
    c = checks.check
    seeds = np.array([7, 11, 7], np.int64)
    out = {}

    default = predict({"seed": seeds}, "serving_default")
    images = default["images"]
    c(f"{transport}/serving_default: outputs", set(default) == {"images"}, sorted(default))
    c(f"{transport}/serving_default: images [3, H, W, C]", images.ndim == 4 and images.shape[0] == 3, images.shape)
    c(f"{transport}/serving_default: images in [0, 1]", _in_unit_range(images))
    c(f"{transport}/serving_default: same seed, same image", _same(images[0], images[2]), _diff(images[0], images[2]))
    c(f"{transport}/serving_default: other seed, other image", not np.allclose(images[0], images[1]))
    image_shape = images.shape[1:]
    out["serving_default"] = images

    sample = predict({"seed": seeds[1:2]}, "sample")["images"]
    c(f"{transport}/sample: images [1, H, W, C]", sample.shape == (1, *image_shape), sample.shape)
    c(f"{transport}/sample: seed 11 alone gives the image it gave in a batch",
      _same(sample[0], images[1]), _diff(sample[0], images[1]))

    seq = predict({"seed": seeds[:2]}, "sample_sequences")
    c(f"{transport}/sample_sequences: outputs", {"images", "canvases"} <= set(seq) <= {"images", "canvases", "write_windows"}, sorted(seq))
    canvases = seq.get("canvases")
    if canvases is not None:
        if time_steps is None:
            time_steps = canvases.shape[1]
        c(f"{transport}/sample_sequences: canvases [2, T, H, W, C]", canvases.shape == (2, time_steps, *image_shape), canvases.shape)
        c(f"{transport}/sample_sequences: canvases in [0, 1]", _in_unit_range(canvases))
        c(f"{transport}/sample_sequences: the last canvas is the image",
          canvases.shape[1:] == (time_steps, *image_shape) and _same(canvases[:, -1], seq["images"]))
    c(f"{transport}/sample_sequences: the images of sample",
      _same(seq["images"], images[:2]), _diff(seq["images"], images[:2]))
    if "write_windows" in seq:
        w = seq["write_windows"]
        c(f"{transport}/sample_sequences: write_windows [2, T, 5]", w.shape == (2, time_steps, 5), w.shape)
        c(f"{transport}/sample_sequences: sigma^2, delta, gamma > 0", bool(np.all(np.isfinite(w)) and np.all(w[..., 2:] > 0)))

    if z_size is None:
        raise SmokeFailure("z_size unknown: the model's metadata was not available; pass --time_steps and --z_size.")
    z = np.random.default_rng(0).standard_normal((2, time_steps, z_size)).astype(np.float32)
    gen = predict({"z": z}, "generate")
    c(f"{transport}/generate: outputs", set(gen) == {"images"}, sorted(gen))
    c(f"{transport}/generate: images [2, H, W, C]", gen["images"].shape == (2, *image_shape), gen["images"].shape)
    c(f"{transport}/generate: images in [0, 1]", _in_unit_range(gen["images"]))
    again = predict({"z": z}, "generate")["images"]
    c(f"{transport}/generate: same noise, same image", _same(gen["images"], again), _diff(gen["images"], again))
    out["generate"] = gen["images"]

    gseq = predict({"z": z}, "generate_sequences")
    c(f"{transport}/generate_sequences: outputs", {"images", "canvases"} <= set(gseq), sorted(gseq))
    c(f"{transport}/generate_sequences: the images of generate",
      _same(gseq["images"], gen["images"]), _diff(gseq["images"], gen["images"]))
    if "canvases" in gseq:
        c(f"{transport}/generate_sequences: canvases [2, T, H, W, C]",
          gseq["canvases"].shape == (2, time_steps, *image_shape), gseq["canvases"].shape)
        c(f"{transport}/generate_sequences: the last canvas is the image",
          gseq["canvases"].shape[1:] == (time_steps, *image_shape) and _same(gseq["canvases"][:, -1], gseq["images"]))

    x = (images[:2] > 0.5).astype(np.float32)  # binary images in [0, 1], as the Bernoulli likelihood models
    rec = predict({"images": x}, "reconstruct")
    c(f"{transport}/reconstruct: outputs", set(rec) == {"reconstructions", "negative_elbo"}, sorted(rec))
    if set(rec) == {"reconstructions", "negative_elbo"}:
        r, nll = rec["reconstructions"], rec["negative_elbo"]
        c(f"{transport}/reconstruct: reconstructions [2, H, W, C]", r.shape == x.shape, r.shape)
        c(f"{transport}/reconstruct: reconstructions in [0, 1]", _in_unit_range(r))
        c(f"{transport}/reconstruct: negative_elbo [2], finite, > 0",
          nll.shape == (2,) and bool(np.all(np.isfinite(nll)) and np.all(nll > 0)), nll.tolist())
        twice = predict({"images": x}, "reconstruct")
        c(f"{transport}/reconstruct: same image, same bound",
          np.allclose(twice["negative_elbo"], nll, rtol=1e-6, atol=0), _diff(twice["negative_elbo"], nll))
        out["reconstruct"] = nll
    return out, time_steps


def run_smoke(host="localhost", rest_port=8501, grpc_port=8500, model_name="draw", version=None,
              transports=TRANSPORTS, time_steps=None, z_size=None, timeout=120.0):
    """Runs every check; returns the report (dict). `report["ok"]` is False if any check failed."""
    from draw_tf.export import serving_client

    unknown = [t for t in transports if t not in TRANSPORTS]
    if unknown or not transports:
        raise ValueError(f"transports must be a non-empty list out of {list(TRANSPORTS)}, received {list(transports)}.")
    if (time_steps is None) != (z_size is None):
        raise ValueError("Give both time_steps and z_size, or neither (then they come from the model's metadata).")
    shape_source = "arguments"
    if time_steps is None:
        shape_source = "REST metadata" if "rest" in transports else "gRPC metadata"
        try:
            if "rest" in transports:
                time_steps, z_size = model_shape_rest(host, rest_port, model_name, version, timeout)
            else:
                time_steps, z_size = model_shape_grpc(host, grpc_port, model_name, version, timeout)
        except Exception as e:
            raise SmokeFailure(
                f"Could not read T and z_size from the {shape_source} of model {model_name!r} "
                f"({type(e).__name__}: {e}); is the server up? Else pass --time_steps and --z_size."
            ) from e

    predictors = {
        "rest": lambda inputs, name: serving_client.predict_rest(
            inputs, name, host=host, port=rest_port, model_name=model_name, version=version, timeout=timeout),
        "grpc": lambda inputs, name: serving_client.predict_grpc(
            inputs, name, host=host, port=grpc_port, model_name=model_name, version=version, timeout=timeout),
    }
    checks = Checks()
    outputs = {}
    for transport in transports:
        try:
            outputs[transport], _ = _smoke_transport(predictors[transport], transport, checks, time_steps, z_size)
        except Exception as e:  # a refused request is a failed check, reported with the others
            checks.check(f"{transport}: every signature answers", False, f"{type(e).__name__}: {e}")
    if set(outputs) == set(TRANSPORTS):
        for key in sorted(set(outputs["rest"]) & set(outputs["grpc"])):
            a, b = outputs["rest"][key], outputs["grpc"][key]
            diff = float(np.abs(a - b).max()) if a.shape == b.shape else float("inf")
            checks.check(f"rest vs grpc: {key} alike", diff <= ACROSS_TRANSPORTS_ATOL * max(1.0, float(np.abs(b).max())), diff)
    failures = checks.failures()
    return {
        "ok": not failures,
        "model": model_name, "version": version, "transports": list(transports),
        "time_steps": time_steps, "z_size": z_size, "shape_from": shape_source,
        "checks": len(checks.results), "failed": failures, "signatures": list(SIGNATURES),
        "results": checks.results,
    }


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--host", default="localhost")
    parser.add_argument("--rest_port", type=int, default=8501)
    parser.add_argument("--grpc_port", type=int, default=8500)
    parser.add_argument("--model_name", default="draw")
    parser.add_argument("--version", type=int, default=None, help="default: the version the server serves")
    parser.add_argument("--transports", default="rest,grpc", help="comma-separated: rest, grpc")
    parser.add_argument("--time_steps", type=int, default=None, help="T (default: from the model's metadata)")
    parser.add_argument("--z_size", type=int, default=None, help="z size (default: from the model's metadata)")
    parser.add_argument("--timeout", type=float, default=120.0, help="seconds per request")
    parser.add_argument("--verbose", action="store_true", help="list every check, not only the failed ones")
    args = parser.parse_args(argv)
    try:
        report = run_smoke(
            args.host, args.rest_port, args.grpc_port, args.model_name, args.version,
            [t.strip() for t in args.transports.split(",") if t.strip()], args.time_steps, args.z_size, args.timeout,
        )
    except ValueError as e:
        parser.error(str(e))
    except SmokeFailure as e:
        print(json.dumps({"ok": False, "error": str(e)}, indent=2))
        return 1
    if not args.verbose:
        report.pop("results")
    print(json.dumps(report, indent=2))
    return 0 if report["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
