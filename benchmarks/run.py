"""draw-tf benchmark suite: one JSON object per measurement, and a JSON report.

    python -m benchmarks.run                       # the whole suite -> benchmarks/results/latest.json
    python -m benchmarks.run --only=train --presets=mnist --batches=100 --repeats=3
    python -m benchmarks.run --case=train --preset=mnist --batch=100   # one case in this process
    python -m benchmarks.run --only export --repeats 3   # SavedModel and TFLite sampling (1 and 2 threads)

Each case runs in a fresh subprocess (so peak resident memory is its own) and prints one JSON
line; the suite repeats every case `--repeats` times and reports the median over repeats with
the spread (min, max). Nothing else should run on the machine meanwhile: with 2 cores, any other
load shows up in the numbers.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def machine_info():
    import tensorflow as tf
    import keras

    cpu = "unknown"
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "python": platform.python_version(),
        "tensorflow": tf.__version__,
        "keras": keras.__version__,
        "intra_op_threads": tf.config.threading.get_intra_op_parallelism_threads(),
        "inter_op_threads": tf.config.threading.get_inter_op_parallelism_threads(),
    }


def peak_rss_mb():
    """Peak resident memory of this process's own address space (VmHWM, reset at exec). Not
    getrusage's ru_maxrss: Linux carries that over exec from the forking parent, so a small case
    spawned by the suite (which has imported TensorFlow) would report the parent's peak."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024.0
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def summarize(values):
    values = sorted(values)
    return {
        "median": statistics.median(values),
        "min": values[0],
        "max": values[-1],
        "p25": values[len(values) // 4],
        "p75": values[(3 * len(values)) // 4],
        "n": len(values),
    }


def _train_images():
    import numpy as np
    from draw_tf import data

    return data.embedded_images("train").astype(np.float32)


def matmul_rate(shapes, iterations=64, repeats=15):
    """GFLOP/s of float32 matmuls of the given (m, k, n) shapes, timed in this process.

    Each shape runs `iterations` dependent products inside one graph loop (like the T steps of
    DRAW), so Python dispatch is not timed and the products cannot overlap.
    """
    import tensorflow as tf

    total_flops, total_time = 0.0, 0.0
    for m, k, n in shapes:
        a = tf.random.normal([m, k])
        w = tf.random.normal([k, n]) * 0.01

        @tf.function
        def chain(a, w):
            def body(i, a):
                y = tf.matmul(a, w)
                return i + 1, a + y[:, :1] * 0.0  # depends on the product: no overlap between iterations

            return tf.while_loop(lambda i, a: i < iterations, body, (0, a), parallel_iterations=1)[1]

        chain(a, w)
        times = []
        for _ in range(repeats):
            t = time.perf_counter()
            chain(a, w).numpy()
            times.append(time.perf_counter() - t)
        total_flops += 2.0 * m * k * n * iterations
        total_time += statistics.median(times)
    return total_flops / total_time / 1e9


def case_train(args):
    """Training throughput through model.fit; compile time separately; FLOP rate vs matmul."""
    import keras
    import tensorflow as tf

    from benchmarks.flops import train_step_flops
    from draw_tf import Draw, get_preset

    cfg = get_preset(args.preset)
    keras.utils.set_random_seed(0)
    model = Draw(cfg, seed=0, jit_loss=not args.no_jit_loss)
    model.compile(optimizer=keras.optimizers.Adam(1e-3), jit_compile=args.jit_compile)
    ds = (
        tf.data.Dataset.from_tensor_slices(_train_images())
        .cache()
        .repeat()
        .shuffle(5000, seed=0)
        .batch(args.batch, drop_remainder=True)
        .prefetch(tf.data.AUTOTUNE)
    )
    stamps = []

    class Timer(keras.callbacks.Callback):
        def on_train_batch_end(self, batch, logs=None):
            stamps.append(time.perf_counter())

    start = time.perf_counter()
    model.fit(ds, steps_per_epoch=args.warmup + args.steps, epochs=1, callbacks=[Timer()], verbose=0)
    step_times = [b - a for a, b in zip(stamps[args.warmup - 1 :], stamps[args.warmup :])]
    stats = summarize(step_times)
    flops = train_step_flops(cfg, args.batch)
    read_out = 2 * cfg.channels * (cfg.read_size**2 if cfg.read_size else cfg.image_height * cfg.image_width)
    reference = matmul_rate(
        [
            (args.batch, read_out + cfg.decoder_size + cfg.encoder_size, 4 * cfg.encoder_size),
            (args.batch, cfg.z_size + cfg.decoder_size, 4 * cfg.decoder_size),
        ]
    )
    achieved = flops / stats["median"] / 1e9
    return {
        "benchmark": "train_fit",
        "preset": args.preset,
        "batch_size": args.batch,
        "jit_compile": args.jit_compile,
        "jit_loss": not args.no_jit_loss,
        "threads": {"intra_op": tf.config.threading.get_intra_op_parallelism_threads(),
                    "inter_op": tf.config.threading.get_inter_op_parallelism_threads()},
        "compile_and_first_step_s": stamps[0] - start,
        "step_seconds": stats,
        "images_per_second": args.batch / stats["median"],
        "step_gflop": flops / 1e9,
        "achieved_gflops_per_s": achieved,
        "matmul_gflops_per_s": reference,
        "utilization": achieved / reference,
        "peak_rss_mb": peak_rss_mb(),
    }


def case_evaluate(args):
    """Negative-ELBO evaluation throughput and the cost of the importance-weighted bound per K."""
    import numpy as np
    import tensorflow as tf

    from draw_tf import Draw, data, get_preset

    cfg = get_preset(args.preset)
    model = Draw(cfg, seed=0)
    images = data.embedded_images("validation").astype(np.float32)
    batches = [tf.constant(images[i : i + args.batch]) for i in range(0, len(images), args.batch)]
    model.reconstruct(batches[0])  # trace
    times = []
    for _ in range(3):
        t = time.perf_counter()
        for b in batches:
            model.reconstruct(b)["negative_elbo"].numpy()
        times.append(time.perf_counter() - t)
    elbo = summarize([len(images) / s for s in times])
    iwae = {}
    x = tf.constant(images[:20])
    for k in args.iwae_k:
        model.importance_weighted_nll(x, k).numpy()  # trace
        ks = []
        for _ in range(3):
            t = time.perf_counter()
            model.importance_weighted_nll(x, k).numpy()
            ks.append((time.perf_counter() - t) / len(images[:20]))
        iwae[str(k)] = summarize(ks)["median"]
    return {
        "benchmark": "evaluate",
        "preset": args.preset,
        "batch_size": args.batch,
        "negative_elbo_images_per_second": elbo,
        "iwae_seconds_per_image_by_k": iwae,
        "peak_rss_mb": peak_rss_mb(),
    }


def case_sample(args):
    """Sampling latency (batch 1) and throughput (batch `--batch`) of the Keras model."""
    from draw_tf import Draw, get_preset

    cfg = get_preset(args.preset)
    model = Draw(cfg, seed=0)
    out = {"benchmark": "sample_keras", "preset": args.preset}
    for batch, key in ((1, "latency_ms_batch1"), (args.batch, f"images_per_second_batch{args.batch}")):
        noise = model.prior_noise(batch, seed=0)
        stats = _time_calls(lambda: model.generate(noise, return_sequences=False)["images"].numpy(), args.sample_repeats, warmup=1)
        if batch == 1:  # milliseconds per image; the spread is [fastest, slowest] in the same unit
            out[key], out[key + "_spread"] = stats["median"] * 1000, [stats["min"] * 1000, stats["max"] * 1000]
        else:  # images per second; the spread is [slowest, fastest] in the same unit
            out[key], out[key + "_spread"] = batch / stats["median"], [batch / stats["max"], batch / stats["min"]]
    out["peak_rss_mb"] = peak_rss_mb()
    return out


def _time_calls(fn, repeats, warmup=3):
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return summarize(times)


def _latency_and_rate(stats, batch):
    """Milliseconds per call (median, [fastest, slowest]) and images per second (median, [slowest, fastest])."""
    return {
        "ms_per_call": stats["median"] * 1000, "ms_per_call_spread": [stats["min"] * 1000, stats["max"] * 1000],
        "images_per_second": batch / stats["median"], "images_per_second_spread": [batch / stats["max"], batch / stats["min"]],
    }


def case_export(args):
    """Writes the artifacts the SavedModel and TFLite sampling cases load (mnist-sized, seed-0 weights)."""
    from draw_tf import Draw, get_preset
    from draw_tf.export import export_saved_model, export_tflite

    model = Draw(get_preset(args.preset), seed=0)
    out = {"benchmark": "export", "preset": args.preset, "saved_model": export_saved_model(model, args.artifacts, "draw")}
    for quantization, batch in (("float32", 1), ("float16", 1), ("int8", 1), ("float32", args.batch)):
        report = export_tflite(model, os.path.join(args.artifacts, f"{quantization}_b{batch}.tflite"), quantization, batch)
        out[f"tflite_{quantization}_b{batch}"] = {k: report[k] for k in ("path", "bytes", "max_abs_diff_images")}
    return out


def case_sample_saved_model(args):
    """The SavedModel's `generate` (given z) and `sample` (seeds) signatures, loaded by TensorFlow alone."""
    import numpy as np
    import tensorflow as tf

    path = os.path.join(args.artifacts, "draw", "1")
    loaded = tf.saved_model.load(path)
    generate, sample = loaded.signatures["generate"], loaded.signatures["sample"]
    steps, z_size = generate.structured_input_signature[1]["z"].shape[1:]
    out = {"benchmark": "sample_saved_model", "preset": args.preset}
    for batch in (1, args.batch):
        z = tf.constant(np.random.default_rng(0).standard_normal((batch, steps, z_size)), tf.float32)
        stats = _time_calls(lambda: generate(z=z)["images"].numpy(), args.sample_repeats)
        out[f"generate_batch{batch}"] = _latency_and_rate(stats, batch)
        seeds = tf.range(batch, dtype=tf.int64)
        out[f"sample_seeds_batch{batch}"] = _latency_and_rate(_time_calls(lambda: sample(seed=seeds)["images"].numpy(), args.sample_repeats), batch)
    out["peak_rss_mb"] = peak_rss_mb()
    return out


def case_sample_tflite(args):
    """A `.tflite` sampler in the LiteRT interpreter: invoke latency, median of `--tflite_repeats`."""
    import numpy as np
    from ai_edge_litert.interpreter import Interpreter

    runner = Interpreter(model_path=args.tflite, num_threads=args.threads).get_signature_runner("sample")
    shape = runner.get_input_details()["z"]["shape"]
    z = np.random.default_rng(0).standard_normal(shape).astype(np.float32)
    stats = _time_calls(lambda: runner(z=z), args.tflite_repeats, warmup=10)
    return {
        "benchmark": "sample_tflite", "file": os.path.basename(args.tflite), "bytes": os.path.getsize(args.tflite),
        "threads": args.threads, "batch": int(shape[0]), **_latency_and_rate(stats, int(shape[0])),
        "peak_rss_mb": peak_rss_mb(),
    }


CASES = {
    "train": case_train, "evaluate": case_evaluate, "sample": case_sample, "export": case_export,
    "sample_saved_model": case_sample_saved_model, "sample_tflite": case_sample_tflite,
}


def run_case_subprocess(argv):
    env = dict(os.environ, PYTHONPATH=REPO + os.pathsep + os.environ.get("PYTHONPATH", ""))
    proc = subprocess.run([sys.executable, "-m", "benchmarks.run", *argv], capture_output=True, text=True, env=env, cwd=REPO)
    if proc.returncode != 0:
        raise RuntimeError(f"benchmark {argv} failed:\n{proc.stderr[-3000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def _median_over_repeats(results, key_path):
    values = []
    for r in results:
        v = r
        for k in key_path:
            v = v[k]
        values.append(v)
    return {"median": statistics.median(values), "min": min(values), "max": max(values), "repeats": len(values)}


def suite(args):
    plan = []
    if "train" in args.only:
        for preset in args.presets:
            for batch in args.batches:
                for jit in args.jit:
                    plan.append(["--case=train", f"--preset={preset}", f"--batch={batch}", f"--steps={args.steps}",
                                 f"--warmup={args.warmup}"] + (["--jit_compile"] if jit else []))
    if "evaluate" in args.only:
        for preset in args.presets:
            plan.append(["--case=evaluate", f"--preset={preset}", "--batch=100"])
    if "sample" in args.only:
        for preset in args.presets:
            plan.append(["--case=sample", f"--preset={preset}", "--batch=100"])
    report = {"machine": machine_info(), "command": " ".join(sys.argv), "results": []}
    artifacts = None
    if "export" in args.only:  # SavedModel and TFLite sampling, from artifacts written once
        artifacts = tempfile.mkdtemp(prefix="draw-bench-")
        report["export"] = run_case_subprocess(["--case=export", "--preset=mnist", f"--artifacts={artifacts}", "--batch=100"])
        print(json.dumps(report["export"]), flush=True)
        plan.append(["--case=sample_saved_model", "--preset=mnist", f"--artifacts={artifacts}", "--batch=100"])
        for name in ("float32_b1", "float16_b1", "int8_b1", "float32_b100"):
            for threads in (1, 2):
                plan.append(["--case=sample_tflite", f"--tflite={os.path.join(artifacts, name + '.tflite')}", f"--threads={threads}"])
    for argv in plan:
        runs = [run_case_subprocess(argv) for _ in range(args.repeats)]
        entry = dict(runs[0])
        entry["repeats"] = runs
        if entry["benchmark"] == "sample_tflite":
            entry["ms_per_call"] = _median_over_repeats(runs, ["ms_per_call"])
            entry["images_per_second"] = _median_over_repeats(runs, ["images_per_second"])
        if entry["benchmark"] == "train_fit":
            entry["images_per_second"] = _median_over_repeats(runs, ["images_per_second"])
            entry["utilization"] = _median_over_repeats(runs, ["utilization"])
            entry["peak_rss_mb"] = _median_over_repeats(runs, ["peak_rss_mb"])
        print(json.dumps({k: v for k, v in entry.items() if k != "repeats"}), flush=True)
        report["results"].append(entry)
    os.makedirs(os.path.dirname(os.path.abspath(args.output)), exist_ok=True)
    with open(args.output, "w") as f:
        json.dump(report, f, indent=2)
    if artifacts:
        shutil.rmtree(artifacts)
    print(f"report written to {args.output}", file=sys.stderr)


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--case", choices=sorted(CASES))
    p.add_argument("--preset", default="mnist")
    p.add_argument("--batch", type=int, default=100)
    p.add_argument("--steps", type=int, default=20)
    p.add_argument("--warmup", type=int, default=3)
    p.add_argument("--jit_compile", action="store_true", help="Keras compile(jit_compile=True): XLA on the whole step")
    p.add_argument("--no_jit_loss", action="store_true", help="Draw(jit_loss=False): no XLA on the forward/backward")
    p.add_argument("--iwae_k", type=int, nargs="+", default=[1, 10, 50])
    p.add_argument("--sample_repeats", type=int, default=20)
    p.add_argument("--tflite_repeats", type=int, default=100)
    p.add_argument("--artifacts", help="export/sample_saved_model: directory of the exported artifacts")
    p.add_argument("--tflite", help="sample_tflite: the .tflite file")
    p.add_argument("--threads", type=int, default=1, help="sample_tflite: interpreter threads")
    p.add_argument("--only", nargs="+", default=["train", "evaluate", "sample", "export"])
    p.add_argument("--presets", nargs="+", default=["mnist", "mnist_no_attention"])
    p.add_argument("--batches", type=int, nargs="+", default=[100, 250])
    p.add_argument("--jit", type=int, nargs="+", default=[0])
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--output", default=os.path.join(REPO, "benchmarks", "results", "latest.json"))
    args = p.parse_args()
    if args.case:
        print(json.dumps(CASES[args.case](args)))
    else:
        suite(args)


if __name__ == "__main__":
    main()
