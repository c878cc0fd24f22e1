"""The web page (export/web): LiteRT.js runs the TFLite sampler in real headless Chromium.

The page is built by export/web/build.py into a temporary directory, served on 127.0.0.1 (a free
port) and driven with Playwright using the system's Chromium (Debian's `chromium`; Playwright's
own browser download is never used). It must load without console errors, give the LiteRT Python
interpreter's outputs on the same noise and the same .tflite file, and draw a sample step by step
with its write window; a screenshot after a drawing is saved to export/web/screenshot.png.

Model: the pretrained `mnist` when draw-tf ships it; else the run in $DRAW_TF_WEB_TEST_MODEL_DIR
when set; else the `quick` preset with random (perturbed) weights, which exercises the same ops.

Without Chromium, the playwright package or LiteRT.js (`npm ci` in export/web) the tests skip
saying which is missing; with DRAW_TF_REQUIRE_BROWSER_TESTS=1 (set by .ci/run, which installs
them) they fail instead, so CI cannot pass by skipping.
"""

import importlib.util
import os
import re
import sys

import numpy as np
import pytest

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
WEB = os.path.join(REPO, "export", "web")
SCREENSHOT = os.path.join(WEB, "screenshot.png")
REQUIRE = os.environ.get("DRAW_TF_REQUIRE_BROWSER_TESTS") == "1"

# Page (LiteRT.js, XNNPACK compiled to wasm SIMD) vs the LiteRT Python interpreter (XNNPACK on the
# native CPU) on the same .tflite file and noise. Same graph and kernels, but a different
# instruction set: the order of float32 additions in the matmuls and the exp/tanh/sigmoid
# approximations may differ in the last bits, and the T recurrent steps carry such differences
# forward. How far they carry depends on the weights: the quick preset's random weights gave 2e-7
# to 8e-7; the trained `mnist` (epoch 122, whose canvas logits reach about +-20) gives 8e-6 on the
# images and 1.2e-5 on the canvases (seeds 0 and 1), while the TF model itself differs from the
# interpreter by 5e-5 / 7e-5 on the same noise (seeds 0-3). Images and canvases are probabilities
# in [0, 1], so an absolute tolerance of 1e-4 (1/39 of a grey level) still means "the same picture"
# and stays above the float32 spread between two correct implementations. The write windows are
# in pixels (gx, gy up to ~30, sigma^2 and delta up to ~40): relative 1e-4 with 1e-4 absolute
# (seen: up to 2e-5 absolute).
ATOL_IMAGES = 1e-4
RTOL_WINDOWS, ATOL_WINDOWS = 1e-4, 1e-4


def _load(filename, name):
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(name, os.path.join(WEB, filename))
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
    return sys.modules[name]


@pytest.fixture(scope="module")
def harness():
    harness = _load("harness.py", "draw_tf_web_harness")
    missing = harness.missing_prerequisites()
    if missing:
        message = "browser test prerequisites missing: " + "; ".join(missing)
        if REQUIRE:
            pytest.fail(message + " (DRAW_TF_REQUIRE_BROWSER_TESTS=1: .ci/run should have installed them)")
        pytest.skip(message)
    return harness


def _model():
    """(model, description): see the module docstring."""
    from draw_tf import Draw

    try:
        from draw_tf import pretrained_models

        if "mnist" in pretrained_models.available():
            return pretrained_models.pretrained("mnist"), "pretrained mnist"
    except ImportError:
        pass
    run = os.environ.get("DRAW_TF_WEB_TEST_MODEL_DIR")
    if run:
        from draw_tf.training import load_model

        return load_model(run), f"{os.path.basename(os.path.normpath(run))} (a quick run)"
    model = Draw("quick", seed=0)
    rng = np.random.default_rng(0)
    for w in model.trainable_weights:  # not the initial weights: the windows move and the canvas changes
        w.assign(w.numpy() + rng.normal(scale=0.3 / np.sqrt(max(w.shape[0], 1)), size=w.shape).astype(np.float32))
    return model, "quick preset, random weights"


@pytest.fixture(scope="module")
def site(harness, tmp_path_factory):
    out = str(tmp_path_factory.mktemp("web") / "dist")
    model, source = _model()
    meta = harness.load_build().build(out, model, source)
    return out, meta, model.config


@pytest.fixture(scope="module")
def chromium(harness, site):
    with harness.serve(site[0]) as url, harness.browser() as (_, browser):
        yield url, browser


def _noise(config, seed):
    return np.random.default_rng(seed).standard_normal((1, config.time_steps, config.z_size)).astype(np.float32)


def test_page_gives_the_python_interpreters_outputs(harness, site, chromium):
    from draw_tf.export import run_sampler

    out, meta, config = site
    url, browser = chromium
    page, log = harness.open_page(browser, url + "?autostart=0")
    info = page.evaluate("window.drawInfo")
    assert info["model"] == meta["model"] and info["write_size"] == config.write_size
    assert info["z_shape"] == [1, config.time_steps, config.z_size]
    assert info["outputs"]["canvases"] == [1, config.time_steps, *config.image_shape]
    differences = {}
    for seed in (0, 1):
        z = _noise(config, seed)
        got = page.evaluate("z => window.drawSample(z)", z.ravel().tolist())
        expected = run_sampler(os.path.join(out, meta["model"]), z)
        assert set(expected) == {"images", "canvases", "write_windows"} and set(expected) <= set(got)
        for name, value in expected.items():
            actual = np.asarray(got[name], np.float32).reshape(value.shape)
            differences[name] = max(differences.get(name, 0.0), float(np.abs(actual - value).max()))
            if name == "write_windows":
                np.testing.assert_allclose(actual, value, rtol=RTOL_WINDOWS, atol=ATOL_WINDOWS, err_msg=name)
            else:
                np.testing.assert_allclose(actual, value, rtol=0, atol=ATOL_IMAGES, err_msg=name)
        assert got["ms_per_image"] > 0
    again = page.evaluate("z => window.drawSample(z)", z.ravel().tolist())
    assert again["images"] == got["images"]  # the same noise gives the same image, bit for bit
    print(f"\nmax |page - Python interpreter| ({meta['source']}): {differences}")
    assert not log.errors(), log.errors()
    page.close()


def test_page_draws_step_by_step_with_the_write_window(harness, site, chromium):
    out, meta, config = site
    url, browser = chromium
    page, log = harness.open_page(browser, url + "?step_ms=15")  # draws a random sample on load
    page.wait_for_function("document.body.dataset.state === 'done'", timeout=60_000)
    assert page.locator("#history canvas").count() == 1

    result = page.evaluate("z => window.drawAnimated(z)", _noise(config, 3).ravel().tolist())
    assert page.evaluate("document.body.dataset.state") == "done"
    assert result["ms_per_image"] > 0
    assert page.locator("#steps canvas").count() == config.time_steps  # every step, in order
    assert page.inner_text("#step").startswith(f"step {config.time_steps} / {config.time_steps}")
    assert re.search(r"time per image: [0-9.]+ ms", page.inner_text("#timing"))
    if config.write_size:  # the window rectangle is drawn in red on the canvas
        red = page.evaluate(
            """() => {
                const c = document.getElementById('canvas');
                const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
                let n = 0;
                for (let i = 0; i < d.length; i += 4) if (d[i] > 200 && d[i + 1] < 100 && d[i + 2] < 100) n++;
                return n;
            }"""
        )
        assert red > 0
    page.screenshot(path=SCREENSHOT, full_page=True)

    page.click("#canvas")  # a click draws a new sample
    page.wait_for_function("document.querySelectorAll('#history canvas').length === 3", timeout=60_000)
    assert page.evaluate("document.body.dataset.state") == "done"
    assert not log.errors(), log.errors()
    page.close()


def test_build_refuses_a_directory_it_did_not_write(harness, tmp_path):
    build = harness.load_build()
    (tmp_path / "notes.txt").write_text("mine")
    with pytest.raises(ValueError, match="holds no previous build"):
        build.build(str(tmp_path), tflite=str(tmp_path / "notes.txt"), write_size=5)
    assert os.listdir(tmp_path) == ["notes.txt"]
    with pytest.raises(ValueError, match="exactly one of"):
        build.build(str(tmp_path / "new"))
