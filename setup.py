"""fastreid-mmt: Mutual Mean-Teaching (ICLR 2020) as a fast-reid 1.4.0 plugin.

fastreid itself is NOT listed in install_requires: its PyPI metadata pins torch 1.13.1, which
has no Python 3.11 wheel, so pip cannot resolve it. Install it with
``pip install --no-deps fastreid==1.4.0`` (``make test`` / ``make demo`` do this for you);
its real import-time dependencies are listed below.
"""

from setuptools import find_packages, setup

FASTREID_RUNTIME = [
    "yacs>=0.1.8",
    "tabulate>=0.9,<0.10",
    "termcolor>=2.2,<3",
    "scipy>=1.10",
    "tensorboard>=2.12",
    "opencv-python-headless>=4.7,<5",
]

setup(
    name="fastreid-mmt",
    version="0.1.0",
    description="Mutual Mean-Teaching for unsupervised domain adaptive person re-ID, as a fast-reid plugin",
    # The product and the laboratory (synthetic data, demo recipes, benchmark helpers) it never imports.
    packages=find_packages(include=["fastreid_mmt", "fastreid_mmt.*", "fastreid_mmt_lab", "fastreid_mmt_lab.*"]),
    # The blind review page's template, style and script (tools/review.py).
    package_data={"fastreid_mmt.retrieval": ["review_assets/*.html", "review_assets/*.css", "review_assets/*.js"]},
    python_requires=">=3.10",
    install_requires=[
        "torch>=2.0",
        "torchvision>=0.15",
        "numpy>=1.24",
        "scikit-learn>=1.3",
        "tqdm>=4.60",
        "matplotlib>=3.7",
        "Pillow>=9",
    ] + FASTREID_RUNTIME,
    extras_require={
        # faiss CPU build (default in `make`); `gpu` takes the GPU build instead. Never both.
        "cpu": ["faiss-cpu==1.15.1"],
        "gpu": ["faiss-gpu==1.15.1"],
        # selenium drives the system's headless Chromium in the review page's browser tests (the system
        # chromedriver, never a downloaded one); without a browser those tests skip.
        "test": ["pytest>=7", "selenium>=4.10"],
        # tools/export_model.py --onnx (onnxscript: PyTorch's default torch.export-based ONNX
        # exporter) and checking the graph on the CPU (onnxruntime). Lower bounds: the tested versions.
        "onnx": ["onnx>=1.23", "onnxruntime>=1.32", "onnxscript>=0.7"],
    },
)
