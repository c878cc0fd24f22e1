import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("KERAS_BACKEND", "tensorflow")

import pytest  # noqa: E402

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SHARED_TFDS = os.environ.get("DRAW_TF_TEST_DATA_DIR") or os.path.join(REPO, "..", "shared", "tensorflow_datasets")


def _has_binarized_mnist():
    return os.path.isdir(os.path.join(SHARED_TFDS, "binarized_mnist"))


@pytest.fixture
def shared_tfds_dir():
    """The offline tfds data_dir of ../shared; tests that need it skip when it is absent."""
    if not _has_binarized_mnist():
        pytest.skip(f"binarized_mnist is not prepared under {os.path.abspath(SHARED_TFDS)} (offline data absent)")
    return os.path.abspath(SHARED_TFDS)


@pytest.fixture(scope="session")
def tiny_config():
    """A small rectangular, two-channel configuration exercising every code path quickly (a frozen
    dataclass: one for the session, so module-scoped fixtures can use it too)."""
    from draw_tf import DrawConfig

    return DrawConfig(
        image_height=12, image_width=10, channels=2, time_steps=3,
        encoder_size=16, decoder_size=12, z_size=4, read_size=3, write_size=4,
    )


def perturb_weights(model, scale=0.3, seed=0):
    """Adds N(0, (scale / sqrt(fan_in))^2) to every trainable weight of `model`, in order, from
    `np.random.default_rng(seed)`; fan_in is the weight's first dimension (at least 1). Returns
    `model`. Tests of equalities (BPTT against autodiff, export against Keras, round trips) run on
    these weights rather than the initial ones: zero biases and initial attention heads would let a
    head that is wired wrongly still give the same numbers.
    """
    import numpy as np

    rng = np.random.default_rng(seed)
    for w in model.trainable_weights:
        fan_in = max(w.shape[0], 1) if len(w.shape) else 1
        w.assign(w.numpy() + rng.normal(scale=scale / np.sqrt(fan_in), size=w.shape).astype(np.float32))
    return model


@pytest.fixture(name="perturb_weights", scope="session")
def perturb_weights_fixture():
    """The `perturb_weights(model, scale=0.3, seed=0)` function of this conftest, for any test or fixture."""
    return perturb_weights
