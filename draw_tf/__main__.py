from draw_tf.cli import run

run()
