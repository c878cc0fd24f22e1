"""The attentive classifier (paper section 4.1): glimpses against the paper's equations, learning,
serialization, and `draw-tf train_classifier` on cluttered scenes."""

import json
import os

import keras
import numpy as np
import pytest
import tensorflow as tf

from draw_tf import ClassifierConfig, DrawClassifier, baseline_classifier
from draw_tf.cluttered import compile_classifier
from test_filterbank import paper_filterbank
from test_mnist_scenes import write_mnist_dir

TINY = ClassifierConfig(image_height=16, image_width=16, time_steps=3, lstm_size=24, read_size=4)


def quadrant_data(n, seed=0, channels=1):
    """16x16 images with one 5x5 blob; the label is the quadrant it lies in (4 classes)."""
    rng = np.random.default_rng(seed)
    images = np.zeros((n, 16, 16, channels), np.float32)
    labels = rng.integers(0, 4, n)
    for i, q in enumerate(labels):
        top = rng.integers(0, 4) + 8 * (q // 2)
        left = rng.integers(0, 4) + 8 * (q % 2)
        images[i, top : top + 5, left : left + 5] = 1.0
    return images, labels


def test_glimpses_follow_the_paper():
    """Each glimpse is gamma F_Y x F_X^T with F from eq. 25-26 at the window the model reports."""
    config = TINY.replace(channels=3, image_width=12)
    model = DrawClassifier(config)
    x = np.random.default_rng(0).random((2, 16, 12, 3)).astype(np.float32)
    out = model(x, return_glimpses=True)
    assert out["logits"].shape == (2, 10)
    assert out["windows"].shape == (2, 3, 5) and out["glimpses"].shape == (2, 3, 4, 4, 3)
    for b in range(2):
        for t in range(3):
            gx, gy, sigma2, delta, gamma = out["windows"][b, t].numpy().astype(np.float64)
            fx = paper_filterbank(gx, delta, sigma2, 4, 12)
            fy = paper_filterbank(gy, delta, sigma2, 4, 16)
            for c in range(3):  # the same filters on every channel
                expected = gamma * fy @ x[b, :, :, c] @ fx.T
                np.testing.assert_allclose(out["glimpses"][b, t, :, :, c], expected, rtol=1e-4, atol=1e-5)
    # the windows move: step t's window comes from the LSTM state after step t - 1
    assert not np.allclose(out["windows"][:, 0], out["windows"][:, 1])


def test_first_glimpse_sees_the_whole_image_at_low_resolution():
    model = DrawClassifier("cluttered_mnist")
    gx, gy, sigma2, delta, gamma = model(np.zeros((1, 100, 100, 1)), return_glimpses=True)["windows"][0, 0].numpy()
    assert abs(gx - 50.5) < 1e-3 and abs(gy - 50.5) < 1e-3  # centred
    assert 11 * delta > 80  # the 12 filter centres span most of the 100 pixels


def test_window_rate_keeps_the_first_windows_and_scales_how_far_an_adam_step_moves_them():
    """window_rate r computes eq. 21 as (r h) W + b with W 1/r larger: the same windows at the start,
    but Adam's step on W (about the learning rate per weight, whatever the gradient) moves them r
    times as far."""
    x = np.random.default_rng(0).random((4, 16, 16, 1)).astype(np.float32)
    y = np.arange(4)
    windows, moves = {}, {}
    for rate in (1.0, 0.1):
        keras.utils.set_random_seed(0)
        model = DrawClassifier(TINY.replace(window_rate=rate))
        windows[rate] = model(x, return_glimpses=True)["windows"].numpy()
        kernel = model.window.dense.kernel
        with tf.GradientTape() as tape:
            loss = keras.losses.sparse_categorical_crossentropy(y, model(x), from_logits=True)
        # (an epsilon far below the gradients, so Adam's first step is lr * sign(gradient) for both)
        keras.optimizers.Adam(1e-3, epsilon=1e-12).apply_gradients([(tape.gradient(loss, kernel), kernel)])
        # the second glimpse's window: a linear function of the kernel (later ones also see moved glimpses)
        moves[rate] = model(x, return_glimpses=True)["windows"].numpy()[:, 1, :2] - windows[rate][:, 1, :2]
    np.testing.assert_allclose(windows[0.1], windows[1.0], rtol=1e-5, atol=1e-5)
    assert np.abs(moves[1.0]).max() > 1e-3  # the first step moves the windows
    np.testing.assert_allclose(moves[0.1], 0.1 * moves[1.0], rtol=1e-3, atol=1e-6)
    with pytest.raises(ValueError, match=r"window_rate must be in \(0, 1\], received 0"):
        TINY.replace(window_rate=0)
    # a classifier saved before window_rate existed had a plain map: it loads as one
    saved = DrawClassifier(TINY).get_config()
    del saved["config"]["window_rate"]
    assert DrawClassifier.from_config(saved).config.window_rate == 1.0
    assert ClassifierConfig().window_rate == 0.0625  # the preset's, from benchmarks/window_dynamics.py


def test_a_warm_start_at_another_window_rate_computes_the_same_classifier(tmp_path, perturb_weights):
    """init_weights trained at one window_rate, loaded into a classifier at another: the window
    kernel is rescaled (from the config.json beside the weights), so windows and logits are the
    trained model's; a lone .weights.h5 file is taken at the new rate as it is."""
    from draw_tf import cluttered

    x = np.random.default_rng(1).random((4, 16, 16, 1)).astype(np.float32)
    trained = perturb_weights(DrawClassifier(TINY.replace(window_rate=0.0625)))
    run = tmp_path / "run"
    run.mkdir()
    trained.save_weights(str(run / "best.weights.h5"))
    with open(run / cluttered.CONFIG_FILE, "w") as f:
        json.dump({"kind": "draw", "preset": "cluttered_mnist", "config": trained.config.to_dict()}, f)
    want = trained(x, return_glimpses=True)
    for rate in (0.0625, 0.25, 1.0):
        warm = DrawClassifier(TINY.replace(window_rate=rate))
        cluttered.load_init_weights(warm, str(run / "best.weights.h5"))
        got = warm(x, return_glimpses=True)
        np.testing.assert_allclose(got["windows"], want["windows"], rtol=1e-4, atol=1e-4)
        np.testing.assert_allclose(got["logits"], want["logits"], rtol=1e-4, atol=1e-5)
    # without the config beside it: the stored kernel as it is, so at rate 1/4 the windows differ
    lone = tmp_path / "lone.weights.h5"
    trained.save_weights(str(lone))
    warm = DrawClassifier(TINY.replace(window_rate=0.25))
    cluttered.load_init_weights(warm, str(lone))
    np.testing.assert_array_equal(warm.window.dense.kernel.numpy(), trained.window.dense.kernel.numpy())
    assert np.abs(warm(x, return_glimpses=True)["windows"].numpy() - want["windows"].numpy()).max() > 1e-2


def test_classify_every_glimpse_trains_on_the_mean_of_every_glimpses_loss():
    """One fit step with classify_every_glimpse: its loss is the mean over the T glimpses of the
    cross-entropy of V h_t, its update is Adam's on that mean's gradient, and its accuracy and
    the model's predictions are the last glimpse's, with the same weights as without the option."""
    x, y = quadrant_data(16)
    config = TINY.replace(num_classes=4, classify_every_glimpse=True)
    keras.utils.set_random_seed(0)
    model = compile_classifier(DrawClassifier(config), learning_rate=1e-2, gradient_clip="off")
    keras.utils.set_random_seed(0)
    reference = DrawClassifier(config.replace(classify_every_glimpse=False))
    assert [w.shape for w in model.weights] == [w.shape for w in reference.weights]
    np.testing.assert_allclose(model(x, every_glimpse=True)[:, -1], model(x), rtol=1e-6, atol=1e-6)

    def mean_glimpse_loss():
        step_logits = reference(x, every_glimpse=True)
        assert step_logits.shape == (16, 3, 4)
        every_label = np.repeat(y[:, None], 3, axis=1)
        return tf.reduce_mean(keras.losses.sparse_categorical_crossentropy(every_label, step_logits, from_logits=True))

    with tf.GradientTape() as tape:
        want_loss = mean_glimpse_loss()
    last_accuracy = np.mean(np.argmax(reference(x).numpy(), -1) == y)
    optimizer = keras.optimizers.Adam(1e-2)
    optimizer.apply_gradients(zip(tape.gradient(want_loss, reference.trainable_weights), reference.trainable_weights))

    logs = model.fit(x, y, batch_size=16, epochs=1, shuffle=False, verbose=0).history
    assert logs["loss"][0] == pytest.approx(float(want_loss), rel=1e-5)
    last_loss = float(tf.reduce_mean(keras.losses.sparse_categorical_crossentropy(y, reference(x), from_logits=True)))
    assert abs(logs["loss"][0] - last_loss) > 1e-3  # (not the last glimpse's loss)
    assert logs["accuracy"][0] == pytest.approx(last_accuracy)
    for got, want in zip(model.trainable_weights, reference.trainable_weights):
        np.testing.assert_allclose(got.numpy(), want.numpy(), rtol=1e-4, atol=1e-6)
    with pytest.raises(ValueError, match="classify_every_glimpse must be true or false, received 1"):
        TINY.replace(classify_every_glimpse=1)


def test_a_run_from_before_classify_every_glimpse_resumes_as_one_without_it(tmp_path):
    from draw_tf import cluttered

    old = {"kind": "draw", "preset": "cluttered_mnist", "config": TINY.to_dict()}
    del old["config"]["classify_every_glimpse"]
    with open(tmp_path / cluttered.CONFIG_FILE, "w") as f:
        json.dump(old, f)
    described = {"kind": "draw", "preset": "cluttered_mnist", "config": TINY.to_dict()}
    cluttered.check_run_config(str(tmp_path), described)  # the same classifier
    described["config"]["classify_every_glimpse"] = True
    with pytest.raises(ValueError, match="holds a classifier with another configuration"):
        cluttered.check_run_config(str(tmp_path), described)


@pytest.mark.parametrize("kind", ["draw", "baseline"])
def test_classifiers_learn_where_the_blob_is(kind):
    keras.utils.set_random_seed(1)
    x, y = quadrant_data(512)
    model = DrawClassifier(TINY.replace(num_classes=4)) if kind == "draw" else baseline_classifier((16, 16, 1), 4)
    compile_classifier(model, learning_rate=3e-3)
    model.fit(x, y, batch_size=32, epochs=8, verbose=0)
    test_x, test_y = quadrant_data(256, seed=9)
    _, accuracy = model.evaluate(test_x, test_y, verbose=0)
    assert accuracy > 0.9, accuracy  # chance is 0.25


def test_save_and_load_give_the_same_logits(tmp_path):
    model = DrawClassifier(TINY)
    x = np.random.default_rng(1).random((3, 16, 16, 1)).astype(np.float32)
    path = str(tmp_path / "classifier.keras")
    model.save(path)
    loaded = keras.models.load_model(path)
    assert isinstance(loaded, DrawClassifier) and loaded.config == TINY
    np.testing.assert_allclose(loaded(x), model(x), rtol=1e-6, atol=1e-6)


def test_bad_input_and_config():
    model = DrawClassifier(TINY)
    with pytest.raises(ValueError, match=r"\[batch, 16, 16, 1\].*\[2, 28, 28, 1\]"):
        model(np.zeros((2, 28, 28, 1), np.float32))
    with pytest.raises(ValueError, match="read_size must be at most the image size"):
        ClassifierConfig(image_height=10, image_width=10, read_size=12)
    with pytest.raises(ValueError, match="Unknown classifier preset"):
        DrawClassifier("mnist")


def test_cluttered_scenes_depend_on_the_epoch_alone_and_follow_fit():
    from test_mnist_scenes import synthetic_digits

    from draw_tf.cluttered import ClutteredScenes

    digits, labels = synthetic_digits(24)
    stepped = ClutteredScenes(digits, labels, batch_size=8, size=40, seed=2)
    first = stepped[0][0].copy()
    for epoch in (1, 2, 3):
        stepped.set_epoch(epoch)
    direct = ClutteredScenes(digits, labels, batch_size=8, size=40, seed=2)
    direct.set_epoch(3)  # a resumed run starting at epoch 3 gets the scenes of epoch 3
    np.testing.assert_array_equal(direct[1][0], stepped[1][0])
    np.testing.assert_array_equal(direct[2][1], stepped[2][1])
    assert not np.array_equal(first, stepped[0][0])  # fresh scenes each epoch
    assert sorted(np.concatenate([stepped[i][1] for i in range(3)])) == sorted(labels)  # each digit once

    model = compile_classifier(baseline_classifier((40, 40, 1)))
    model.fit(direct, epochs=2, shuffle=False, verbose=0, callbacks=[direct.callback()])
    assert direct.epoch == 1  # fit told it the epochs 0 and 1


@pytest.mark.slow  # the command line as a subprocess, twice
def test_train_classifier_cli(tmp_path):
    """`draw-tf train_classifier` on 100x100 cluttered scenes of (synthetic) MNIST IDX files, as a
    user runs it with the offline files; then a mismatched re-run, and a resumed one."""
    from test_cli import run_cli

    from draw_tf import cluttered

    data_dir = str(tmp_path / "mnist")
    write_mnist_dir(data_dir, n=40)  # test digits only: 32 train, 8 validation, no test split
    model_dir = str(tmp_path / "cluttered")
    args = (
        "train_classifier", f"--model_dir={model_dir}", f"--data_dir={data_dir}", "--epochs=2", "--batch_size=8",
        "--set=time_steps=2,lstm_size=32",
    )
    out = run_cli(*args)
    result = json.loads(out.stdout[out.stdout.index("{\n"):])
    assert result["train_digits"] == 32 and result["validation_scenes"] == 8 and result["test_scenes"] == 0
    assert result["test_error"] is None and result["config"]["time_steps"] == 2
    log = cluttered.read_log(model_dir)
    assert [r["epoch"] for r in log] == [0, 1] and all(r["wall_seconds"] > 0 for r in log)
    # the selected epoch is the one with the lowest validation error, and model.keras holds its weights
    best = max(log, key=lambda r: r["val_accuracy"])
    assert result["selected_epoch"] == best["epoch"] + 1
    assert result["validation_error"] == pytest.approx(1.0 - best["val_accuracy"], abs=1e-6)
    with open(os.path.join(model_dir, "result.json")) as f:
        assert json.load(f)["validation_error"] == result["validation_error"]
    assert os.path.exists(os.path.join(model_dir, "glimpses.gif"))
    loaded = keras.models.load_model(os.path.join(model_dir, "model.keras"))
    val_x, val_y = cluttered.held_out_scenes(data_dir, "validation")
    assert np.mean(np.argmax(loaded.predict(val_x, verbose=0), -1) != val_y) == pytest.approx(result["validation_error"])
    with pytest.raises(ValueError, match="holds a classifier with another configuration"):
        cluttered.train_classifier(model_dir, "draw", data_dir=data_dir, overrides={"time_steps": 3})
    # more epochs continue the run: the log gets epoch 2, the earlier rows stay
    cluttered.train_classifier(model_dir, "draw", data_dir=data_dir, epochs=3, batch_size=8, verbose=0,
                               overrides={"time_steps": 2, "lstm_size": 32})
    assert [r["epoch"] for r in cluttered.read_log(model_dir)] == [0, 1, 2]


def test_full_mnist_gives_a_test_error_apart_from_validation(tmp_path, monkeypatch):
    from draw_tf import cluttered, mnist_scenes

    data_dir = str(tmp_path / "mnist")
    write_mnist_dir(data_dir, n=50, with_train=True)
    monkeypatch.setattr(mnist_scenes, "FULL_TRAIN_SIZE", 40)  # 40 train, 10 validation, 50 test digits
    result = cluttered.train_classifier(str(tmp_path / "baseline"), "baseline", data_dir=data_dir, epochs=1, batch_size=8, verbose=0)
    assert result["kind"] == "baseline" and result["config"] == {"image_shape": [100, 100, 1], "num_classes": 10}
    assert (result["train_digits"], result["validation_scenes"], result["test_scenes"]) == (40, 10, 50)
    assert result["gradient_clip"] == "tensor:1"  # the default, recorded
    assert 0.0 <= result["test_error"] <= 1.0
    test_x, test_y = cluttered.held_out_scenes(data_dir, "test")
    val_x, _ = cluttered.held_out_scenes(data_dir, "validation")
    assert not np.array_equal(test_x[:10], val_x)  # their own digits and seed
    # measured again from the run's files (as for a stopped run): the same errors
    measured = cluttered.evaluate_run(str(tmp_path / "baseline"), data_dir)
    assert measured["test_error"] == pytest.approx(result["test_error"]) and measured["epoch"] == 1


def test_lr_decay_sets_each_epochs_rate_and_a_run_continues_with_its_adam_state_under_a_new_schedule(tmp_path):
    import h5py

    from draw_tf import cluttered

    data_dir = str(tmp_path / "mnist")
    write_mnist_dir(data_dir, n=40)
    run = dict(data_dir=data_dir, batch_size=8, steps_per_epoch=2, verbose=0)
    model_dir = str(tmp_path / "run")
    cluttered.train_classifier(model_dir, "baseline", epochs=1, learning_rate=2e-3, **run)  # a constant rate
    cluttered.train_classifier(model_dir, "baseline", epochs=3, learning_rate=2e-3, lr_decay=0.5, **run)
    with h5py.File(os.path.join(model_dir, "backup", "latest.weights.h5")) as f:
        iterations, rate = f["optimizer/vars/0"][()], f["optimizer/vars/1"][()]
    assert iterations == 6  # Adam's state came through the change of schedule: 3 epochs of 2 steps
    assert rate == pytest.approx(2e-3 * 0.5**2)  # the rate of epoch 2 (0-based)
    assert [r["epoch"] for r in cluttered.read_log(model_dir)] == [0, 1, 2]
    with pytest.raises(ValueError, match=r"lr_decay must be a number in \(0, 1\] \(factor per epoch\), received 1.5"):
        cluttered.train_classifier(str(tmp_path / "other"), "baseline", lr_decay=1.5)
    assert not (tmp_path / "other").exists()


@pytest.mark.parametrize("gradient_clip", ["tensor:1", "global:1", "off"])
def test_gradient_clip_is_adam_on_the_gradients_clipped_per_tensor_or_globally(gradient_clip):
    """compile_classifier's Adam, given gradients of norm 3 and 4 (global norm 5), moves the weights
    as a plain Adam given them clipped by hand: each to norm 1 (tensor:1), both by 1/5 (global:1) or
    not at all. Two steps with gradients of different sizes, since Adam's first step ignores scale."""
    model = compile_classifier(baseline_classifier((8, 8, 1), num_classes=2), learning_rate=0.1, gradient_clip=gradient_clip)
    reference = keras.optimizers.Adam(0.1)
    variables = model.trainable_variables[:2]
    copies = [tf.Variable(v.numpy()) for v in variables]
    rng = np.random.default_rng(0)
    for scale in (0.2, 1.0):
        raw = [rng.standard_normal(v.shape).astype(np.float32) for v in variables]
        raw = [g / np.linalg.norm(g) * n * scale for g, n in zip(raw, (3.0, 4.0))]
        total = np.sqrt(sum(float(np.sum(g**2)) for g in raw))
        if gradient_clip == "tensor:1":
            clipped = [g * min(1.0, 1.0 / np.linalg.norm(g)) for g in raw]
        elif gradient_clip == "global:1":
            clipped = [g * min(1.0, 1.0 / total) for g in raw]
        else:
            clipped = raw
        model.optimizer.apply_gradients(zip([tf.constant(g) for g in raw], variables))
        reference.apply_gradients(zip([tf.constant(g) for g in clipped], copies))
    for v, c in zip(variables, copies):
        np.testing.assert_allclose(v.numpy(), c.numpy(), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("text", ["tensor:0", "global:x", "global", "norm:1", "off:3", "tensor:inf"])
def test_a_bad_gradient_clip_is_refused_in_one_line_before_anything_is_written(tmp_path, text):
    from draw_tf import cluttered

    with pytest.raises(ValueError, match=r"^gradient_clip must be tensor:C, global:C \(C > 0\) or off, received '") as e:
        cluttered.train_classifier(str(tmp_path / "run"), "baseline", gradient_clip=text)
    assert "\n" not in str(e.value) and not (tmp_path / "run").exists()


def test_window_shift_moves_the_windows_of_glimpses_after_the_first():
    model = DrawClassifier(ClassifierConfig(image_height=40, image_width=40, time_steps=3, lstm_size=16, read_size=4))
    images = np.random.default_rng(0).random((2, 40, 40, 1)).astype(np.float32)
    plain = model(images, return_glimpses=True)
    moved = model(images, return_glimpses=True, window_shift=(3.0, -2.0))
    np.testing.assert_allclose(moved["windows"][:, 0], plain["windows"][:, 0])  # the first glimpse stays
    # glimpse 2's window comes from h_1, which only the unmoved first glimpse made: exactly shifted
    np.testing.assert_allclose(moved["windows"][:, 1, :2] - plain["windows"][:, 1, :2], [[3.0, -2.0]] * 2, atol=1e-4)
    np.testing.assert_allclose(moved["windows"][:, 1, 2:], plain["windows"][:, 1, 2:], rtol=1e-5)
    np.testing.assert_allclose(model(images, window_shift=(0.0, 0.0)), plain["logits"], rtol=1e-5)


@pytest.mark.slow  # three classifier training runs
def test_init_weights_warm_starts_a_new_run_and_a_resumed_run_ignores_it(tmp_path):
    """A new run with init_weights starts from those weights (a fresh Adam); bad values fail first."""
    from draw_tf import cluttered

    data_dir = str(tmp_path / "mnist")
    write_mnist_dir(data_dir, n=40)
    run = dict(data_dir=data_dir, batch_size=8, steps_per_epoch=1, verbose=0, seed=1)
    first = str(tmp_path / "first")
    cluttered.train_classifier(first, "baseline", epochs=1, **run)
    weights = os.path.join(first, cluttered.BEST_WEIGHTS)
    _, trained = cluttered.load_run(first)
    # at a rate of 1e-12 one step leaves the weights where they started: the warm run's weights
    warm = str(tmp_path / "warm")
    result = cluttered.train_classifier(warm, "baseline", epochs=1, learning_rate=1e-12, init_weights=weights, **run)
    assert result["init_weights"] == weights
    _, started = cluttered.load_run(warm)
    for a, b in zip(trained.get_weights(), started.get_weights()):
        np.testing.assert_allclose(a, b, atol=1e-6)
    # a fresh run from the same seed starts where `first` started, one Adam step (about 1e-3) away
    cold = str(tmp_path / "cold")
    cluttered.train_classifier(cold, "baseline", epochs=1, learning_rate=1e-12, **run)
    _, fresh = cluttered.load_run(cold)
    assert max(np.abs(a - b).max() for a, b in zip(trained.get_weights(), fresh.get_weights())) > 5e-4
    # resuming the warm run with more epochs continues its backup; the (other) init_weights are ignored
    cold_weights = os.path.join(cold, cluttered.BEST_WEIGHTS)
    cluttered.train_classifier(warm, "baseline", epochs=2, learning_rate=1e-12, init_weights=cold_weights, **run)
    assert [r["epoch"] for r in cluttered.read_log(warm)] == [0, 1]
    _, resumed = cluttered.load_run(warm)
    resumed.load_weights(os.path.join(warm, "backup", "latest.weights.h5"))  # the weights the run ended with
    for a, b in zip(trained.get_weights(), resumed.get_weights()):
        np.testing.assert_allclose(a, b, atol=1e-6)
    # weights of another model fail before anything is written
    with pytest.raises(ValueError, match=r"init_weights '.*best\.weights\.h5' do not fit this draw classifier"):
        cluttered.train_classifier(str(tmp_path / "bad"), "draw", init_weights=weights,
                                   overrides={"time_steps": 2, "lstm_size": 8}, **run)
    assert not (tmp_path / "bad").exists()
    with pytest.raises(FileNotFoundError, match=r"expected an existing \.weights\.h5 file, received '.*missing\.weights\.h5'"):
        cluttered.train_classifier(str(tmp_path / "bad"), "baseline", init_weights=str(tmp_path / "missing.weights.h5"), **run)
    with pytest.raises(ValueError, match="Unknown pretrained classifier 'mnist'; available: cluttered_mnist"):
        cluttered.train_classifier(str(tmp_path / "bad"), "baseline", init_weights="mnist", **run)
    assert not (tmp_path / "bad").exists()


def test_the_weight_average_is_the_moving_average_of_every_steps_weights_and_does_not_change_training():
    """compile_classifier(weight_average=M): Adam's average after step k is M avg_{k-1} + (1 - M) w_k,
    starting at w_1 (the first step's weights); the trained weights are those of a run without it;
    optimizer_average_applied puts the average in the model and gives the trained weights back."""
    from draw_tf.weight_average import optimizer_average_applied

    x, y = quadrant_data(32)
    config = TINY.replace(num_classes=4)
    keras.utils.set_random_seed(0)
    averaged = compile_classifier(DrawClassifier(config), learning_rate=1e-2, weight_average=0.75)
    plain = compile_classifier(DrawClassifier(config), learning_rate=1e-2)
    averaged(x[:1]), plain(x[:1])
    plain.set_weights(averaged.get_weights())
    steps = {"averaged": [], "plain": []}
    for name, model in (("averaged", averaged), ("plain", plain)):
        record = keras.callbacks.LambdaCallback(
            on_train_batch_end=lambda batch, logs, m=model, n=name: steps[n].append([w.numpy() for w in m.trainable_weights]))
        model.fit(x, y, batch_size=8, epochs=1, shuffle=False, verbose=0, callbacks=[record])
    assert len(steps["averaged"]) == 4
    for got, want in zip(steps["averaged"], steps["plain"]):
        for g, w in zip(got, want):
            np.testing.assert_array_equal(g, w)
    expected = steps["plain"][0]
    for weights in steps["plain"][1:]:
        expected = [0.75 * a + 0.25 * w for a, w in zip(expected, weights)]
    for got, want in zip(averaged.trainable_weights, expected):  # fit ends with the average in the model
        np.testing.assert_allclose(got.numpy(), want, rtol=1e-5, atol=1e-7)
    last = steps["averaged"][-1]
    for variable, value in zip(averaged.trainable_weights, last):
        variable.assign(value)
    with optimizer_average_applied(averaged):
        for got, want in zip(averaged.trainable_weights, expected):
            np.testing.assert_allclose(got.numpy(), want, rtol=1e-5, atol=1e-7)
    for got, want in zip(averaged.trainable_weights, last):
        np.testing.assert_array_equal(got.numpy(), want)


@pytest.mark.slow  # three classifier training runs
def test_a_run_with_a_weight_average_validates_and_keeps_it_resumes_with_it_and_cannot_drop_it(tmp_path):
    import h5py

    from draw_tf import cluttered

    data_dir = str(tmp_path / "mnist")
    write_mnist_dir(data_dir, n=40)
    run = dict(data_dir=data_dir, batch_size=8, steps_per_epoch=3, verbose=0, learning_rate=1e-2,
               overrides={"time_steps": 2, "lstm_size": 32})
    model_dir = str(tmp_path / "run")
    result = cluttered.train_classifier(model_dir, "draw", epochs=2, weight_average=0.5, **run)
    assert result["weight_average"] == 0.5
    log = cluttered.read_log(model_dir)
    assert [r["epoch"] for r in log] == [0, 1] and all("val_accuracy_unaveraged" in r for r in log)
    # the kept weights are the average the log validated (measure_run checks them against the log), not the trained ones
    measured = cluttered.evaluate_run(model_dir, data_dir)
    assert measured["validation_error"] == pytest.approx(1.0 - cluttered.best_row(log)["val_accuracy"], abs=1e-6)
    backup = os.path.join(model_dir, "backup", "latest.weights.h5")
    with h5py.File(backup) as f:
        optimizer_values = len(f["optimizer/vars"])
    _, kept = cluttered.load_run(model_dir)
    _, trained = cluttered.load_run(model_dir, weights=os.path.join("backup", "latest.weights.h5"))
    trainable = len(kept.trainable_weights)
    assert optimizer_values == 2 + 3 * trainable  # iterations, rate, and per weight Adam's two moments and the average
    assert any(np.abs(a.numpy() - b.numpy()).max() > 1e-4 for a, b in zip(kept.trainable_weights, trained.trainable_weights))
    # resumed without saying: it keeps its average
    cluttered.train_classifier(model_dir, "draw", epochs=3, **run)
    assert [r["epoch"] for r in cluttered.read_log(model_dir)] == [0, 1, 2]
    with h5py.File(backup) as f:
        assert f["optimizer/vars/0"][()] == 9 and len(f["optimizer/vars"]) == optimizer_values
    with open(os.path.join(model_dir, cluttered.CONFIG_FILE)) as f:
        before = f.read()
    with pytest.raises(ValueError, match=r"holds a run with weight_average=0.5, received weight_average=0.0: a run keeps its own"):
        cluttered.train_classifier(model_dir, "draw", epochs=4, weight_average=0, **run)
    with open(os.path.join(model_dir, cluttered.CONFIG_FILE)) as f:
        assert f.read() == before
    assert [r["epoch"] for r in cluttered.read_log(model_dir)] == [0, 1, 2]
