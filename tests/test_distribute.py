"""Training under tf.distribute gives the single-device result for the same global batch and seed:
`MirroredStrategy` over two logical CPUs, and `MultiWorkerMirroredStrategy` with two worker
processes talking over 127.0.0.1. Each run is `draw_tf.training.train`, as the CLI runs it, on a
small model (the replicas' agreement does not depend on its size)."""

import json
import os
import socket
import subprocess
import sys
import textwrap

import numpy as np
import pytest

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# Losses agree to float rounding (the replicas' sums are added in another order); weights after
# the steps to 1e-4 of their scale.
LOSS_RTOL, WEIGHT_ATOL = 1e-5, 1e-4
TIMEOUT = 900  # seconds a training process may take (a hang fails the test instead of blocking the run)

TRAIN = textwrap.dedent(
    """
    import json, os, sys
    import numpy as np
    import tensorflow as tf

    def train(model_dir, strategy):
        from draw_tf import get_preset, training
        config = get_preset("quick", time_steps=3, encoder_size=16, decoder_size=16, z_size=4)
        _, history = training.train(
            config, model_dir, dataset="embedded", epochs=2, steps_per_epoch=3, batch_size=16,
            validation=False, num_samples=4, verbose=0, save_every_steps=None, strategy=strategy,
        )
        weights = [w.numpy() for w in training.load_model(model_dir).weights]
        np.savez(os.path.join(model_dir, "weights.npz"), *weights)
        return [float(v) for v in history["loss"]]
    """
)


def _run(script, env=None, timeout=TIMEOUT):
    env = dict(os.environ if env is None else env, TF_CPP_MIN_LOG_LEVEL="2")
    env["PYTHONPATH"] = REPO + os.pathsep + env.get("PYTHONPATH", "")
    return subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=env, timeout=timeout)


def _weights(model_dir):
    with np.load(os.path.join(model_dir, "weights.npz")) as f:
        return [f[k] for k in sorted(f.files, key=lambda k: int(k.split("_")[1]))]


def _assert_same_training(single_loss, single_dir, loss, model_dir):
    np.testing.assert_allclose(loss, single_loss, rtol=LOSS_RTOL)
    for a, b in zip(_weights(single_dir), _weights(model_dir)):
        np.testing.assert_allclose(b, a, atol=WEIGHT_ATOL * max(1.0, float(np.abs(a).max())))


@pytest.fixture(scope="module")
def single_and_mirrored(tmp_path_factory):
    """One process: the single-device run (the reference of both tests) and the mirrored run."""
    base = tmp_path_factory.mktemp("distribute")
    dirs = {name: str(base / name) for name in ("single", "mirrored")}
    script = TRAIN + textwrap.dedent(
        f"""
        cpu = tf.config.list_physical_devices("CPU")[0]
        tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
        single = train({dirs["single"]!r}, "default")
        mirrored = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
        assert mirrored.num_replicas_in_sync == 2
        print(json.dumps({{"single": single, "mirrored": train({dirs["mirrored"]!r}, mirrored)}}))
        """
    )
    proc = _run(script)
    assert proc.returncode == 0, proc.stderr[-3000:]
    losses = json.loads(proc.stdout.strip().splitlines()[-1])
    return {name: (losses[name], dirs[name]) for name in dirs}


@pytest.mark.slow
def test_mirrored_over_two_cpus_matches_one_device(single_and_mirrored):
    _assert_same_training(*single_and_mirrored["single"], *single_and_mirrored["mirrored"])


CLASSIFIER = textwrap.dedent(
    """
    import json
    import keras, numpy as np, tensorflow as tf
    from draw_tf import ClassifierConfig, DrawClassifier
    from draw_tf.cluttered import compile_classifier

    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
    rng = np.random.default_rng(0)
    x, y = rng.random((32, 16, 16, 1)).astype(np.float32), rng.integers(0, 4, 32)
    config = ClassifierConfig(image_height=16, image_width=16, time_steps=3, lstm_size=24, read_size=4,
                              num_classes=4, classify_every_glimpse=True)

    def fit(strategy):
        with strategy.scope():
            keras.utils.set_random_seed(0)
            model = compile_classifier(DrawClassifier(config), learning_rate=1e-2)
        history = model.fit(x, y, batch_size=16, epochs=2, shuffle=False, verbose=0).history
        return history["loss"], [w.numpy().tolist() for w in model.weights]

    mirrored = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
    assert mirrored.num_replicas_in_sync == 2
    print(json.dumps({"single": fit(tf.distribute.get_strategy()), "mirrored": fit(mirrored)}))
    """
)


@pytest.mark.slow
def test_classify_every_glimpse_mirrored_over_two_cpus_matches_one_device():
    """The classifier's own train step (classify_every_glimpse) under MirroredStrategy: the same
    losses and weights as on one device for the same global batch."""
    proc = _run(CLASSIFIER)
    assert proc.returncode == 0, proc.stderr[-3000:]
    runs = json.loads(proc.stdout.strip().splitlines()[-1])
    (single_loss, single_weights), (loss, weights) = runs["single"], runs["mirrored"]
    np.testing.assert_allclose(loss, single_loss, rtol=LOSS_RTOL)
    for a, b in zip(single_weights, weights):
        a = np.asarray(a)
        np.testing.assert_allclose(np.asarray(b), a, atol=WEIGHT_ATOL * max(1.0, float(np.abs(a).max())))


def _free_ports(n):
    sockets = [socket.socket() for _ in range(n)]
    for s in sockets:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in sockets]
    for s in sockets:
        s.close()
    return ports


@pytest.mark.slow
def test_multi_worker_two_processes_match_one_device(single_and_mirrored, tmp_path):
    single_loss, single_dir = single_and_mirrored["single"]
    workers = [f"127.0.0.1:{p}" for p in _free_ports(2)]
    procs = []
    for index in range(2):
        env = dict(os.environ, TF_CONFIG=json.dumps({"cluster": {"worker": workers}, "task": {"type": "worker", "index": index}}))
        env.update(TF_CPP_MIN_LOG_LEVEL="2", PYTHONPATH=REPO + os.pathsep + os.environ.get("PYTHONPATH", ""))
        script = TRAIN + f"print(json.dumps(train({str(tmp_path / f'worker{index}')!r}, 'multi_worker')))"
        procs.append(subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                      text=True, env=env))
    try:
        outputs = [p.communicate(timeout=TIMEOUT) for p in procs]
    finally:
        for p in procs:  # never leave a worker waiting for its peer
            if p.poll() is None:
                p.kill()
                p.wait()
    for p, (stdout, stderr) in zip(procs, outputs):
        assert p.returncode == 0, stderr[-3000:]
    for index, (stdout, _) in enumerate(outputs):
        loss = json.loads(stdout.strip().splitlines()[-1])
        _assert_same_training(single_loss, single_dir, loss, str(tmp_path / f"worker{index}"))
