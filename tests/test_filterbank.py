"""The filterbank, read and write against a direct loop over the paper's equations (19-29)."""

import math

import numpy as np
import pytest
import tensorflow as tf

from draw_tf import attention


def paper_window(params, A, B, N):
    gx_t, gy_t, log_sigma2, log_delta_t, log_gamma = params
    gx = (A + 1) / 2 * (gx_t + 1)  # eq. 22
    gy = (B + 1) / 2 * (gy_t + 1)  # eq. 23
    # eq. 24; for N = 1 it is undefined and delta does not move the single filter (mu = g).
    delta = (max(A, B) - 1) / max(N - 1, 1) * math.exp(log_delta_t)
    return gx, gy, math.exp(log_sigma2), delta, math.exp(log_gamma)


def paper_filterbank(g, delta, sigma2, N, length):
    """Eq. 19-20, 25-26 with 1-based i and a, one loop per element."""
    F = np.zeros((N, length))
    for i in range(1, N + 1):
        mu = g + (i - N / 2 - 0.5) * delta
        for a in range(1, length + 1):
            F[i - 1, a - 1] = math.exp(-((a - mu) ** 2) / (2 * sigma2))
        F[i - 1] /= F[i - 1].sum()
    return F


CASES = [
    # (A = width, B = height, N, params)
    (28, 28, 2, [0.0, 0.0, 0.0, 0.0, 0.0]),
    (28, 28, 5, [0.3, -0.2, 0.7, -0.5, 0.4]),
    (20, 13, 4, [-0.6, 0.5, 1.2, -1.0, -0.3]),
    (9, 17, 3, [0.1, 0.3, 0.4, -0.3, 0.8]),
    (12, 12, 1, [0.2, -0.1, 0.5, 0.0, 0.0]),
]


@pytest.mark.parametrize("A,B,N,params", CASES)
def test_window_and_filterbank_match_paper(A, B, N, params):
    window = attention.decode_window(tf.constant([params], tf.float32), image_height=B, image_width=A, grid_size=N)
    gx, gy, sigma2, delta, gamma = paper_window(params, A, B, N)
    np.testing.assert_allclose([float(v[0]) for v in window], [gx, gy, sigma2, delta, gamma], rtol=1e-5)
    fx, fy = attention.filterbanks(window, N, image_height=B, image_width=A, eps=1e-12)
    np.testing.assert_allclose(fx[0].numpy(), paper_filterbank(gx, delta, sigma2, N, A), atol=1e-6)
    np.testing.assert_allclose(fy[0].numpy(), paper_filterbank(gy, delta, sigma2, N, B), atol=1e-6)
    np.testing.assert_allclose(fx.numpy().sum(-1), 1.0, atol=1e-5)


def test_zero_parameters_centre_the_grid_with_the_full_stride():
    # g~ = 0 puts the centre at (A+1)/2; delta~ = 1 spreads a 2x2 grid over the whole 28 px (27 px apart).
    window = attention.decode_window(tf.zeros([1, 5]), 28, 28, 2)
    assert float(window.gx[0]) == pytest.approx(14.5)
    assert float(window.delta[0]) == pytest.approx(27.0)


@pytest.mark.parametrize("A,B,N,params", CASES)
def test_read_and_write_match_loops(A, B, N, params):
    rng = np.random.default_rng(0)
    C = 2
    images = rng.random((1, C, B, A)).astype(np.float32)
    patch = rng.normal(size=(1, C, N, N)).astype(np.float32)
    window = attention.decode_window(tf.constant([params], tf.float32), B, A, N)
    fx, fy = attention.filterbanks(window, N, B, A)
    gamma = float(window.gamma[0])
    Fx, Fy = fx[0].numpy().astype(np.float64), fy[0].numpy().astype(np.float64)

    glimpse = attention.apply_read(tf.constant(images), fx, fy, window.gamma).numpy()[0]
    written = attention.apply_write(tf.constant(patch), fx, fy, window.gamma).numpy()[0]
    for c in range(C):
        expected_read = np.zeros((N, N))
        for i in range(N):
            for j in range(N):
                expected_read[i, j] = gamma * sum(
                    Fy[i, b] * images[0, c, b, a] * Fx[j, a] for b in range(B) for a in range(A)
                )
        np.testing.assert_allclose(glimpse[c], expected_read, rtol=1e-4, atol=1e-6)
        expected_write = np.zeros((B, A))
        for b in range(B):
            for a in range(A):
                expected_write[b, a] = sum(
                    Fy[i, b] * patch[0, c, i, j] * Fx[j, a] for i in range(N) for j in range(N)
                ) / gamma
        np.testing.assert_allclose(written[c], expected_write, rtol=1e-4, atol=1e-6)


def test_read_and_write_are_adjoint_up_to_gamma_squared():
    # <read(x), w> = gamma * <F_Y x F_X^T, w> = gamma * <x, F_Y^T w F_X> = gamma^2 * <x, write(w)>.
    rng = np.random.default_rng(1)
    batch, C, B, A, N = 4, 3, 15, 11, 5
    params = tf.constant(rng.normal(scale=0.5, size=(batch, 5)), tf.float32)
    window = attention.decode_window(params, B, A, N)
    fx, fy = attention.filterbanks(window, N, B, A)
    x = tf.constant(rng.random((batch, C, B, A)), tf.float32)
    w = tf.constant(rng.normal(size=(batch, C, N, N)), tf.float32)
    lhs = tf.reduce_sum(attention.apply_read(x, fx, fy, window.gamma) * w, axis=[1, 2, 3])
    rhs = window.gamma**2 * tf.reduce_sum(x * attention.apply_write(w, fx, fy, window.gamma), axis=[1, 2, 3])
    np.testing.assert_allclose(lhs.numpy(), rhs.numpy(), rtol=1e-4)


def test_layers_shapes_and_channel_sharing():
    B, A, C, N, dec = 13, 9, 3, 4, 7
    read = attention.AttentiveRead(N, B, A, C)
    write = attention.AttentiveWrite(N, B, A, C)
    h = tf.random.normal([5, dec])
    x = tf.random.uniform([5, C, B, A])
    r = read(x, x, h)
    assert r.shape == (5, 2 * C * N * N)
    # The same filters on every channel: identical channels give identical glimpses.
    same = tf.tile(x[:, :1], [1, C, 1, 1])
    g = tf.reshape(read(same, same, h), [5, 2 * C, N, N])
    np.testing.assert_allclose(g[:, 0].numpy(), g[:, 1].numpy(), rtol=1e-6)
    assert write(h).shape == (5, C, B, A)
    assert attention.PlainRead(B, A, C)(x, x).shape == (5, 2 * C * B * A)
    assert attention.PlainWrite(B, A, C)(h).shape == (5, C, B, A)


def test_far_off_image_filters_and_tiny_sigma_stay_finite():
    params = tf.constant([[50.0, -50.0, -30.0, 3.0, 0.0], [0.0, 0.0, -40.0, -5.0, -20.0]])
    window = attention.decode_window(params, 28, 28, 5)
    fx, fy = attention.filterbanks(window, 5, 28, 28)
    assert np.all(np.isfinite(fx.numpy())) and np.all(np.isfinite(fy.numpy()))
    assert np.all(fx.numpy().sum(-1) <= 1.0 + 1e-5)


def test_initial_read_window_looks_at_the_digit_not_the_border():
    # With zero-initialised attention a 2x2 read sits 27 px apart on the empty border; the default
    # initialisation must put all four filters inside the central 20x20 pixels where MNIST digits are.
    from draw_tf import DrawCell, get_preset
    from draw_tf.cell import window_rows

    cell = DrawCell(get_preset("mnist"))
    cell.build()
    window = cell.read.window(tf.zeros([1, cell.config.decoder_size]))
    centres = float(window.gx[0]) + (np.arange(1, 3) - 1 - 0.5) * float(window.delta[0])
    assert np.all((centres > 4) & (centres < 25)), centres
    assert float(window.delta[0]) < 15 and float(window.sigma2[0]) > 4
    assert window_rows(window).shape == (5, 1)
