"""Analytic FLOP counts of one DRAW training step (multiply-add = 2 FLOPs; matrix products only).

Elementwise work (gates, filterbank exponentials, KL) is a few percent of the total and is left
out, so utilization figures are slightly pessimistic.
"""

from __future__ import annotations

from draw_tf.config import DrawConfig


def forward_flops_per_image_step(cfg: DrawConfig) -> int:
    H, W, C = cfg.image_shape
    enc, dec, z = cfg.encoder_size, cfg.decoder_size, cfg.z_size
    read_out = 2 * C * (cfg.read_size**2 if cfg.read_size else H * W)
    patch = C * (cfg.write_size**2 if cfg.write_size else H * W)
    flops = 2 * (read_out + dec + enc) * 4 * enc  # encoder LSTM: [r, h_dec, h_enc] -> gates
    flops += 2 * enc * 2 * z  # posterior mean and log sigma
    flops += 2 * (z + dec) * 4 * dec  # decoder LSTM
    flops += 2 * dec * (patch + 5 * (cfg.read_size > 0) + 5 * (cfg.write_size > 0))  # write and attention heads
    if cfg.read_size:  # F_Y x F_X^T on x and x_hat
        n = cfg.read_size
        flops += 2 * C * 2 * (n * H * W + n * W * n)
    if cfg.write_size:  # F_Y^T w F_X
        n = cfg.write_size
        flops += C * 2 * (H * n * n + H * n * W)
    return flops


def train_step_flops(cfg: DrawConfig, batch_size: int) -> int:
    """Forward plus backward (about twice the forward's matrix work) for one batch."""
    return 3 * forward_flops_per_image_step(cfg) * cfg.time_steps * batch_size


def generate_flops(cfg: DrawConfig, batch_size: int) -> int:
    H, W, C = cfg.image_shape
    dec, z = cfg.decoder_size, cfg.z_size
    patch = C * (cfg.write_size**2 if cfg.write_size else H * W)
    per = 2 * (z + dec) * 4 * dec + 2 * dec * (patch + 5 * (cfg.write_size > 0))
    if cfg.write_size:
        n = cfg.write_size
        per += C * 2 * (H * n * n + H * n * W)
    return per * cfg.time_steps * batch_size
