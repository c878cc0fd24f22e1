"""Builds the static DRAW web page: the TFLite sampler, LiteRT.js and its wasm files, the page.

    cd export/web && npm ci && cd ../..
    python export/web/build.py                        # the pretrained `mnist` model, when shipped
    python export/web/build.py --model_dir=runs/quickstart   # any draw-tf run
    python export/web/build.py --tflite=draw_float32.tflite --write_size=5   # an exported sampler
    python -m http.server -d export/web/dist 8000     # then open http://localhost:8000/

The output directory (default export/web/dist) holds everything the page loads, so it works
offline and from any static file server: index.html, draw.js, model.json (which .tflite to load
and the write grid size N the page needs to draw the write window), the .tflite sampler, and
litert/ (LiteRT.js's ES modules and wasm runtimes copied from node_modules; nothing comes from a
CDN). The relaxed-SIMD and the compatibility wasm builds are copied; LiteRT.js picks one for the
browser. The threaded and JSPI builds are left out (threads need cross-origin isolation headers
that plain static servers do not send; JSPI is for WebNN / WebGPU partitioning).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
DEFAULT_OUT = os.path.join(HERE, "dist")
NODE_MODULES = os.path.join(HERE, "node_modules")
PAGE_FILES = ("index.html", "draw.js")
# (source under node_modules, destination under <out>/litert)
LITERT_FILES = (
    ("@litertjs/core/dist/index.js", "core/index.js"),
    ("@litertjs/wasm-utils/dist/index.js", "wasm-utils/index.js"),
    ("@litertjs/core/wasm/litert_wasm_internal.js", "wasm/litert_wasm_internal.js"),
    ("@litertjs/core/wasm/litert_wasm_internal.wasm", "wasm/litert_wasm_internal.wasm"),
    ("@litertjs/core/wasm/litert_wasm_compat_internal.js", "wasm/litert_wasm_compat_internal.js"),
    ("@litertjs/core/wasm/litert_wasm_compat_internal.wasm", "wasm/litert_wasm_compat_internal.wasm"),
)
MARKER = "model.json"


def litert_version(node_modules=NODE_MODULES):
    """The installed @litertjs/core version, or None when `npm ci` has not run."""
    try:
        with open(os.path.join(node_modules, "@litertjs", "core", "package.json")) as f:
            return json.load(f)["version"]
    except (OSError, ValueError, KeyError):
        return None


def check_node_modules(node_modules=NODE_MODULES):
    missing = [src for src, _ in LITERT_FILES if not os.path.isfile(os.path.join(node_modules, src))]
    if missing:
        raise FileNotFoundError(
            f"LiteRT.js is not installed under {node_modules} (missing {missing[0]}): run `npm ci` in {HERE}."
        )


def pretrained_available(name="mnist"):
    try:
        from draw_tf import pretrained_models
    except ImportError:
        return False
    return name in pretrained_models.available("generator")


def load_model(pretrained=None, model_dir=None):
    """(model, description): the pretrained model `pretrained`, or the latest checkpoint of `model_dir`."""
    if pretrained:
        from draw_tf import pretrained_models

        return pretrained_models.pretrained(pretrained), f"pretrained {pretrained}"
    from draw_tf.training import load_model as load_run

    return load_run(model_dir), os.path.basename(os.path.normpath(model_dir))


def _prepare_out(out):
    """Empties `out` if it holds a previous build (or nothing); refuses any other directory."""
    if os.path.exists(out):
        if not os.path.isdir(out):
            raise ValueError(f"--out {out!r} is a file; expected a directory.")
        if os.listdir(out) and not os.path.isfile(os.path.join(out, MARKER)):
            raise ValueError(f"--out {out!r} is not empty and holds no previous build ({MARKER}); choose another directory.")


def build(out=DEFAULT_OUT, model=None, source=None, tflite=None, write_size=None, quantization="float32", batch_size=1):
    """Writes the page to `out` for `model` (a `Draw`, exported here) or for an exported `tflite`
    sampler (then give `write_size`, N of the write attention, 0 without). Returns model.json's dict.
    """
    check_node_modules()
    if (model is None) == (tflite is None):
        raise ValueError("Give exactly one of model (a Draw, exported here) and tflite (an exported sampler).")
    _prepare_out(out)
    parent = os.path.dirname(os.path.abspath(out))
    os.makedirs(parent, exist_ok=True)
    staging = tempfile.mkdtemp(prefix=".web-build-", dir=parent)
    try:
        meta = {"signature": "sample", "litert_version": litert_version()}
        if model is not None:
            from draw_tf.export import export_tflite

            name = f"draw_{quantization}.tflite"
            report = export_tflite(model, os.path.join(staging, name), quantization, batch_size)
            cfg = model.config
            meta.update(
                model=name, source=source or "draw-tf model", write_size=cfg.write_size, time_steps=cfg.time_steps,
                z_size=cfg.z_size, image_shape=list(cfg.image_shape), batch_size=batch_size, quantization=quantization,
                max_abs_diff_images_vs_tf=report.get("max_abs_diff_images"), ops=report["ops"],
            )
        else:
            if write_size is None:
                raise ValueError("With tflite, give write_size (the model's write_size; 0 without write attention).")
            name = os.path.basename(tflite)
            shutil.copyfile(tflite, os.path.join(staging, name))
            meta.update(model=name, source=source or name, write_size=int(write_size))
        for filename in PAGE_FILES:
            shutil.copyfile(os.path.join(HERE, filename), os.path.join(staging, filename))
        for src, dst in LITERT_FILES:
            target = os.path.join(staging, "litert", dst)
            os.makedirs(os.path.dirname(target), exist_ok=True)
            shutil.copyfile(os.path.join(NODE_MODULES, src), target)
        with open(os.path.join(staging, MARKER), "w") as f:
            json.dump(meta, f, indent=2)
        os.chmod(staging, 0o755)
        if os.path.exists(out):
            shutil.rmtree(out)
        os.rename(staging, out)
    finally:
        if os.path.exists(staging):
            shutil.rmtree(staging)
    return meta


def main(argv=None):
    parser = argparse.ArgumentParser(description="Build the DRAW web page (LiteRT.js) into a static directory.")
    source = parser.add_mutually_exclusive_group()
    source.add_argument("--pretrained", help="a pretrained model shipped with draw-tf (default: mnist, when shipped)")
    source.add_argument("--model_dir", help="a draw-tf run directory (draw-tf train --model_dir=...)")
    source.add_argument("--tflite", help="an exported sampler (draw-tf export_tflite); give --write_size too")
    parser.add_argument("--write_size", type=int, help="with --tflite: the model's write_size N (0: no write attention)")
    parser.add_argument("--out", default=DEFAULT_OUT, help="output directory (default: export/web/dist)")
    parser.add_argument("--quantization", default="float32", choices=["float32", "float16", "int8"])
    parser.add_argument("--batch_size", type=int, default=1, help="images per sampler run (default 1)")
    args = parser.parse_args(argv)
    if not (args.pretrained or args.model_dir or args.tflite):
        if not pretrained_available("mnist"):
            parser.error("the pretrained mnist model is not in this installation; pass --model_dir=RUN or --tflite=FILE.")
        args.pretrained = "mnist"
    if args.pretrained and not pretrained_available(args.pretrained):
        parser.error(f"no pretrained model {args.pretrained!r} in this installation; pass --model_dir=RUN or --tflite=FILE.")
    if args.tflite:
        meta = build(args.out, tflite=args.tflite, write_size=args.write_size)
    else:
        model, description = load_model(args.pretrained, args.model_dir)
        meta = build(args.out, model, description, quantization=args.quantization, batch_size=args.batch_size)
    print(json.dumps({"out": os.path.abspath(args.out), **meta}, indent=2))
    shown = os.path.relpath(args.out)
    shown = shown if not shown.startswith("..") else os.path.abspath(args.out)
    print(f"Serve it with: python -m http.server -d {shown} 8000", file=sys.stderr)


if __name__ == "__main__":
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    main()
