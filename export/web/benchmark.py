"""Time per image of the DRAW sampler: the web page (LiteRT.js on wasm, headless Chromium) vs the
LiteRT Python interpreter (ai_edge_litert) on the same .tflite file and the same noise.

    python export/web/build.py ...                     # builds export/web/dist first
    python export/web/benchmark.py --repeats=30 > timing.json

Prints JSON: for each runtime the median, min and max milliseconds per image over --repeats runs
(after --warmup runs that are not counted), and the first run apart (the interpreter's includes
XNNPACK's lazy set-up; the page has already made one untimed run on zeros while loading). The page times `model.run` plus copying the outputs out of the wasm heap, inside the
page with performance.now(), so the browser driver's round trip is not counted; the interpreter
is timed around the signature runner's call, which also returns the outputs. Both run on one
thread (--threads for the interpreter): the page loads LiteRT.js's single-threaded wasm, since a
plain static server sends no cross-origin isolation headers for wasm threads.

Run it on an idle machine: the numbers mean nothing while other processes load the CPU.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import harness  # noqa: E402


def summary(ms_per_image):
    return {
        "median_ms_per_image": statistics.median(ms_per_image),
        "min_ms_per_image": min(ms_per_image),
        "max_ms_per_image": max(ms_per_image),
        "runs": len(ms_per_image),
    }


def time_page(dist, z, warmup, repeats):
    with harness.serve(dist) as url, harness.browser() as (_, browser):
        page, log = harness.open_page(browser, url + "?autostart=0")
        timings = page.evaluate(
            """async ([z, runs]) => {
                const out = [];
                for (let i = 0; i < runs; i++) out.push((await window.drawSample(z)).ms_per_image);
                return out;
            }""",
            [z.ravel().tolist(), warmup + repeats],
        )
        errors = log.errors()
        version = browser.version
        page.close()
    if errors:
        raise RuntimeError(f"The page logged errors: {errors}")
    return timings, version


def time_interpreter(path, z, warmup, repeats, threads):
    from ai_edge_litert.interpreter import Interpreter

    runner = Interpreter(model_path=path, num_threads=threads).get_signature_runner("sample")
    timings = []
    for _ in range(warmup + repeats):
        start = time.perf_counter()
        runner(z=z)
        timings.append((time.perf_counter() - start) * 1000.0 / z.shape[0])
    return timings


def main(argv=None):
    import numpy as np

    parser = argparse.ArgumentParser(description="Page (LiteRT.js) vs LiteRT Python interpreter: ms per image.")
    parser.add_argument("--dist", default=os.path.join(HERE, "dist"), help="the built page (build.py --out)")
    parser.add_argument("--repeats", type=int, default=30, help="timed runs per runtime")
    parser.add_argument("--warmup", type=int, default=3, help="untimed runs first (the first is reported apart)")
    parser.add_argument("--threads", type=int, default=1, help="interpreter threads (the page uses one)")
    args = parser.parse_args(argv)
    if args.repeats < 1 or args.warmup < 1:
        parser.error("--repeats and --warmup must be at least 1")
    missing = harness.missing_prerequisites()
    if missing:
        parser.error("; ".join(missing))
    meta_path = os.path.join(args.dist, "model.json")
    if not os.path.isfile(meta_path):
        parser.error(f"no built page in {args.dist} (run export/web/build.py first)")
    with open(meta_path) as f:
        meta = json.load(f)
    path = os.path.join(args.dist, meta["model"])

    from ai_edge_litert.interpreter import Interpreter

    shape = Interpreter(model_path=path).get_signature_runner("sample").get_input_details()["z"]["shape"]
    z = np.random.default_rng(0).standard_normal(shape).astype(np.float32)
    page, chromium = time_page(args.dist, z, args.warmup, args.repeats)
    python = time_interpreter(path, z, args.warmup, args.repeats, args.threads)
    result = {
        "model": meta["model"], "source": meta.get("source"), "z_shape": [int(d) for d in shape],
        "warmup": args.warmup, "repeats": args.repeats,
        "page_litertjs_wasm": {**summary(page[args.warmup:]), "first_run_ms_per_image": page[0]},
        "python_interpreter": {**summary(python[args.warmup:]), "first_run_ms_per_image": python[0], "threads": args.threads},
        "versions": {
            "chromium": chromium, "litertjs_core": meta.get("litert_version") or harness.load_build().litert_version(),
            "ai_edge_litert": _version("ai-edge-litert"), "python": platform.python_version(),
        },
        "machine": {"cpus": os.cpu_count(), "processor": platform.processor() or platform.machine(),
                    "load_average_1min": os.getloadavg()[0]},
    }
    result["page_over_python_median"] = (
        result["page_litertjs_wasm"]["median_ms_per_image"] / result["python_interpreter"]["median_ms_per_image"]
    )
    print(json.dumps(result, indent=2))


def _version(distribution):
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(distribution)
    except PackageNotFoundError:
        return None


if __name__ == "__main__":
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    main()
