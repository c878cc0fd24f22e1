"""SavedModel export for TensorFlow Serving: `<export_dir>/<model_name>/<version>/`, written whole.

TF Serving watches `<export_dir>/<model_name>/` and loads the numbered subdirectory with the
highest version. A version is written to a hidden temporary directory beside the versions (TF
Serving ignores names that are not integers) and renamed into place only once complete; a version
that exists is never overwritten.

Signatures (every input and output has a free batch dimension):

| signature | inputs | outputs |
|---|---|---|
| `serving_default`, `sample` | `seed` int64 [b] | `images` float32 [b, H, W, C] |
| `sample_sequences` | `seed` int64 [b] | `images`, `canvases` [b, T, H, W, C], `write_windows` [b, T, 5] |
| `generate` | `z` float32 [b, T, z_size] | `images` |
| `generate_sequences` | `z` float32 [b, T, z_size] | `images`, `canvases`, `write_windows` |
| `reconstruct` | `images` float32 [b, H, W, C] in [0, 1] | `reconstructions` [b, H, W, C], `negative_elbo` [b] |

Images and canvases are the mean images sigmoid(c_t) in [0, 1] (Bernoulli probabilities, or the
discretized logistic's means / 255); `negative_elbo` is in nats under the model's likelihood;
windows are (gx, gy, sigma^2, delta, gamma) in pixels (only with write attention). Image i of
`sample` is drawn from `Draw.noise_from_seeds([seed_i])` alone, so the same seed gives the same
image whatever it is batched with. `reconstruct` uses the posterior sample of seed 0 for every
image, so the same image always gives the same reconstruction and bound.
"""

from __future__ import annotations

import os
import re
import shutil
import tempfile

import keras
import tensorflow as tf

from draw_tf.files import current_umask

SIGNATURES = ("serving_default", "sample", "sample_sequences", "generate", "generate_sequences", "reconstruct")


def serving_functions(model):
    """{signature name: tf.function with a fixed input signature} for `model` (a `Draw`)."""
    cfg = model.config
    seed_spec = tf.TensorSpec([None], tf.int64, name="seed")
    z_spec = tf.TensorSpec([None, cfg.time_steps, cfg.z_size], tf.float32, name="z")
    images_spec = tf.TensorSpec([None, *cfg.image_shape], tf.float32, name="images")

    def loop_noise(z):
        return tf.transpose(z, [1, 2, 0])  # [batch, T, z] -> [T, z, batch]

    def sample(seed):
        return model.generate_outputs(loop_noise(model.noise_from_seeds(seed)), return_sequences=False)

    def sample_sequences(seed):
        return model.generate_outputs(loop_noise(model.noise_from_seeds(seed)), return_sequences=True)

    def generate(z):
        return model.generate_outputs(loop_noise(z), return_sequences=False)

    def generate_sequences(z):
        return model.generate_outputs(loop_noise(z), return_sequences=True)

    def reconstruct(images):
        x = model.check_images(images)  # range and finiteness asserts: a clear error for a bad request
        noise = model.noise_from_seeds(tf.zeros(tf.shape(x)[:1], tf.int64))
        out = model.reconstruct_outputs(x, loop_noise(noise))
        return {"reconstructions": out["images"], "negative_elbo": out["negative_elbo"]}

    fns = {
        "sample": (sample, seed_spec),
        "sample_sequences": (sample_sequences, seed_spec),
        "generate": (generate, z_spec),
        "generate_sequences": (generate_sequences, z_spec),
        "reconstruct": (reconstruct, images_spec),
    }
    return {name: tf.function(fn, input_signature=[spec]) for name, (fn, spec) in fns.items()}


def existing_versions(model_path):
    """The integer versions under `model_path` (TF Serving's layout), sorted."""
    if not os.path.isdir(model_path):
        return []
    return sorted(int(n) for n in os.listdir(model_path) if re.fullmatch(r"[0-9]+", n) and os.path.isdir(os.path.join(model_path, n)))


def _check_destination(export_dir, model_name, version):
    if not isinstance(model_name, str) or not re.fullmatch(r"[A-Za-z0-9_.-]+", model_name) or model_name in (".", ".."):
        raise ValueError(f"model_name must be a non-empty name of letters, digits, '_', '-' or '.', received {model_name!r}.")
    if version is not None and (isinstance(version, bool) or not isinstance(version, int) or version < 1):
        raise ValueError(f"version must be a positive integer (or None for the next one), received {version!r}.")
    for path in (export_dir, os.path.join(export_dir, model_name)):
        if os.path.exists(path) and not os.path.isdir(path):
            raise ValueError(f"The export path {path!r} is a file; expected a directory (or nothing).")


def export_saved_model(model, export_dir, model_name="draw", version=None, verbose=False):
    """Exports `model` (a `Draw`) for TF Serving to `<export_dir>/<model_name>/<version>/`.

    `version` None takes the next integer after the highest existing one (1 in an empty
    directory). Raises FileExistsError if that version exists; nothing is written unless the whole
    SavedModel is. Returns the version's path.
    """
    _check_destination(export_dir, model_name, version)
    model_path = os.path.join(export_dir, model_name)
    versions = existing_versions(model_path)
    if version is None:
        version = (versions[-1] + 1) if versions else 1
    final = os.path.join(model_path, str(version))
    if os.path.exists(final):
        raise FileExistsError(
            f"{final!r} already exists; versions are never overwritten. Omit the version for the next one "
            f"({(versions[-1] + 1) if versions else 1}) or choose another."
        )
    os.makedirs(model_path, exist_ok=True)
    tmp = tempfile.mkdtemp(prefix=f".tmp-{version}-", dir=model_path)  # not an integer: TF Serving ignores it
    try:
        archive = keras.export.ExportArchive()
        archive.track(model)
        for name, fn in serving_functions(model).items():  # `sample` first: write_out aliases it as serving_default
            archive.add_endpoint(name, fn)
        archive.write_out(tmp, verbose=verbose)
        os.chmod(tmp, 0o777 & ~current_umask())  # mkdtemp's 0700 would hide it from a serving user
        if os.path.exists(final):
            raise FileExistsError(f"{final!r} appeared while exporting; versions are never overwritten.")
        os.rename(tmp, final)
    finally:
        if os.path.exists(tmp):
            shutil.rmtree(tmp)
    return final

