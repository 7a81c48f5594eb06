"""ganlatent_jax: interpretable directions in GAN latent spaces, in JAX/Flax."""
from setuptools import find_packages, setup

setup(
    name="ganlatent_jax",
    version="0.1.0",
    description=("Find, refine and measure interpretable directions in GAN latent spaces "
                 "(SRE, LatentCLR, PS-SC, UD-GAN, continuous factors) with JAX/Flax."),
    # The repository's configs/ ships inside the wheel as ganlatent_jax/configs (`--config=sre_3dshapes` resolves to
    # it from any directory; see ganlatent_jax/config_files.py). configs/ stays the one source.
    packages=find_packages(include=["ganlatent_jax", "ganlatent_jax.*"]) + ["ganlatent_jax.configs"],
    package_dir={"ganlatent_jax.configs": "configs"},
    package_data={"ganlatent_jax": ["assets/*", "assets/**/*"], "ganlatent_jax.configs": ["*.py"]},
    include_package_data=True,
    python_requires=">=3.10",
    install_requires=[
        "jax>=0.4.35",
        "flax>=0.10",
        "optax>=0.2.3",
        "orbax-checkpoint>=0.6",
        "etils[epath]>=1.5",   # ganlatent_jax.io reads and writes a gs:// workdir through etils.epath
        "ml_collections>=0.1.1",
        "absl-py>=2.0",
        "numpy>=1.26",
        "scipy>=1.11",
        "pillow>=10.0",
        "tensorflow-datasets>=4.9.6",
        "tensorboardX>=2.6",
        "tqdm>=4.66",
        "scikit-learn>=1.3",
        "chex>=0.1.86",
    ],
    extras_require={
        # selenium drives Debian's chromium/chromium-driver in the browser tests (skipped without them); pdoc
        # builds the API reference in a test; build + wheel make the wheel that a test installs into a fresh venv.
        # Accelerators (issue 20): the jax plugins of a TPU VM (libtpu) and of CUDA 12 GPUs, at the installed jax's
        # version (launch/tpu_pod.sh and launch/slurm.sbatch install these on every host).
        # A workdir on GCS (gs://bucket/run, the shared workdir of a pod): etils.epath opens gs:// through gcsfs;
        # orbax's checkpoint arrays go through tensorstore's own gcs driver. A TPU pod run writes to GCS, so the tpu
        # extra brings it along.
        "gcs": ["gcsfs>=2023.1"],
        "tpu": ["jax[tpu]>=0.4.35", "gcsfs>=2023.1"],
        "cuda12": ["jax[cuda12]>=0.4.35"],
        # gcsfs + gcp-storage-emulator: tests/test_remote_workdir.py runs a gs:// workdir against a local GCS emulator
        # (its fixture patches two gaps of the emulator by its internals, as of 2026.7.19).
        "test": ["pytest>=7.4", "pytest-xdist>=3.5", "selenium>=4.20", "pdoc>=14", "build>=1.0", "wheel>=0.40",
                 "gcsfs>=2023.1", "gcp-storage-emulator>=2026.7"],
    },
)
