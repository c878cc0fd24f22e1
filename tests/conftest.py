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


@pytest.fixture
def tiny_config():
    """A small rectangular, two-channel configuration exercising every code path quickly."""
    from draw_tf import DrawConfig

    return DrawConfig(
        image_height=12, image_width=10, channels=2, time_steps=3,
        encoder_size=16, decoder_size=12, z_size=4, read_size=3, write_size=4,
    )
