from setuptools import find_packages, setup

INSTALL_REQUIRES = [
    "tensorflow>=2.21,<2.22",
    "keras>=3.15,<3.16",
    "tensorflow-probability[tf]>=0.25,<0.26",
    "tf-keras>=2.21,<2.22",
    "tensorflow-datasets>=4.9.10,<4.10",
    "importlib_resources>=6.0",  # tensorflow-datasets 4.9.10 imports it without declaring it
    "tensorboard>=2.21,<2.22",
    "absl-py>=2.1,<3",
    "numpy>=1.26,<3",
    "pillow>=10.0",
    "ai-edge-litert>=2.3,<2.4",  # the LiteRT interpreter: export_tflite checks every file it writes
    "tensorflow-serving-api>=2.21,<2.22",  # PredictRequest protos and the gRPC stub of the serving client
    "matplotlib>=3.8,<4",  # draw_tf.visualize's plots
]

setup(
    name="draw-tf",
    version="0.2.0",
    description="DRAW (Gregor et al. 2015): a recurrent attentive image generator in TensorFlow / Keras 3",
    long_description=open("README.md").read(),
    long_description_content_type="text/markdown",
    packages=find_packages(include=["draw_tf", "draw_tf.*"]),
    package_data={"draw_tf": ["assets/*.npz"]},
    python_requires=">=3.10",
    install_requires=INSTALL_REQUIRES,
    extras_require={
        # nbclient, nbformat and ipykernel execute the colab/ notebooks in the tests
        "test": ["pytest>=8.0", "nbclient>=0.10,<0.12", "nbformat>=5.10,<6", "ipykernel>=6.29,<8"],
    },
    entry_points={"console_scripts": ["draw-tf=draw_tf.cli:run"]},
    license="Apache-2.0",
)
