#!/usr/bin/env python3
"""A Python here that holds what the lent GPU machine's ``python3`` holds, for rehearsing a device run.

The lent machine (an H100 or H200) has PyTorch, Numba, numba-cuda, CuPy, matplotlib and the rest of its
image's packages (``DEVICE_PACKAGES``, as read on one on 2026-11-17), no Jupyter packages and no network.
A rehearsal that runs in the kit's own environment proves nothing about the wheels a device run carries:
nbgrader, ipykernel and the rest are already there. This script makes a virtual environment with only the
packages of ``DEVICE_PACKAGES`` that a full environment here holds (hard links to its files, so seconds
and no disk), plus numba-cuda's CUDA 12 toolkit wheels (the machine's ``cuda-toolkit`` under another
name)::

    python3 benchmarks/gpu_mimic.py /tmp/machine --from /work/main/.venv/bin/python
    /tmp/machine/bin/python benchmarks/gpu_run.py --grading --rehearse

The environment is a venv of the source's base interpreter, so the same Python version as the source:
packages compiled for it load. Standard library only.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

# The lent machine's image, 'cuda', as KINDS.md lists it (2026-11-17). No Jupyter package among them.
DEVICE_PACKAGES = """absl-py accelerate aiofiles aiohappyeyeballs aiohttp aiosignal annotated-doc anyio attrs botorch build
certifi charset-normalizer chex click cloudpickle cmake colorama contourpy coverage cuda-bindings cuda-core
cuda-pathfinder cuda-toolkit cupy-cuda13x cycler cython diffrax e3nn einops equinox etils execnet filelock flatbuffers
flax fonttools formulaic frozenlist fsspec gpytorch grpcio h11 h5py hf-xet httpcore httpx huggingface-hub humanize
hypothesis idna imageio interface-meta jax jax-cuda13-pjrt jax-cuda13-plugin jaxlib jaxtyping jinja2 joblib kiwisolver
lazy-loader lightning lightning-utilities linear-operator lineax llvmlite lxml markdown markdown-it-py markupsafe
matplotlib mdurl meson ml-dtypes mpi4py mpmath msgpack multidict multipledispatch mypy-extensions nanobind narwhals
networkx ninja numba numba-cuda numpy numpyro nvidia-cublas nvidia-cuda-cupti nvidia-cuda-nvrtc nvidia-cuda-runtime
nvidia-cudnn-cu13 nvidia-cufft nvidia-cufile nvidia-curand nvidia-cusolver nvidia-cusparse nvidia-cusparselt-cu13
nvidia-ml-py nvidia-nccl-cu13 nvidia-nvjitlink nvidia-nvshmem-cu13 nvidia-nvtx onnx onnx-ir onnxruntime onnxscript
opencv-python-headless optax opt-einsum opt-einsum-fx optimistix orbax-checkpoint packaging pandas pathspec patsy peft
pillow pip pluggy portalocker prometheus-client propcache protobuf psutil pyarrow pybind11 py-cpuinfo pygments
pyparsing pyproject-hooks pyre-extensions pytest pytest-benchmark pytest-cov pytest-mock pytest-timeout pytest-xdist
python-dateutil pytorch-lightning pyyaml regex requests rich sacrebleu safetensors scikit-build-core scikit-image
scikit-learn scipy seaborn sentencepiece sentence-transformers setuptools shellingham simplejson six sortedcontainers
statsmodels sympy tabulate tensorboard tensorboard-data-server tensorstore threadpoolctl tifffile tiktoken timm
tokenizers toolz torch torchaudio torchdiffeq torch-geometric torchmetrics torchvision tqdm transformers treescope
triton typer typing-extensions typing-inspect urllib3 uvloop wadler-lindig werkzeug wheel wrapt xarray xxhash yarl
zipp""".split()
# Stand-ins here for what the machine has under other names (its CUDA 13 toolkit and libraries).
STAND_INS = re.compile(r"nvidia-.*-cu12")

LIST = r"""
import importlib.metadata as m, json, sys
out = []
for d in m.distributions():
    files = [str(f) for f in (d.files or [])]
    out.append({"name": d.metadata["Name"], "base": str(d.locate_file("")), "files": files})
print(json.dumps({"base": sys._base_executable, "version": list(sys.version_info[:2]), "dists": out}))
"""


def canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def build(dest: Path, source: str) -> dict:
    """Make ``dest``: a venv of ``source``'s base interpreter holding the device's packages from ``source``."""
    listed = json.loads(subprocess.run([source, "-c", LIST], capture_output=True, text=True, check=True).stdout)
    if dest.exists():
        shutil.rmtree(dest)
    subprocess.run([listed["base"], "-m", "venv", "--without-pip", str(dest)], check=True)
    site = dest / "lib" / f"python{listed['version'][0]}.{listed['version'][1]}" / "site-packages"
    wanted = {canonical(n) for n in DEVICE_PACKAGES}
    kept, left = [], []
    for dist in listed["dists"]:
        name = canonical(dist["name"])
        if name not in wanted and not STAND_INS.fullmatch(name):
            left.append(name)
            continue
        base = Path(dist["base"])
        for rel in dist["files"]:
            if rel.startswith(".."):  # scripts in bin/: not needed to import
                continue
            src, dst = base / rel, site / rel
            if not src.is_file() or dst.exists():
                continue
            dst.parent.mkdir(parents=True, exist_ok=True)
            try:
                os.link(src, dst)
            except OSError:
                shutil.copy2(src, dst)
        kept.append(name)
    return {"python": str(dest / "bin" / "python"), "kept": sorted(set(kept)), "left_out": sorted(set(left))}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("dest", help="folder of the new environment (made afresh)")
    ap.add_argument("--from", dest="source", default=sys.executable,
                    help="the Python whose packages are linked (default: this one)")
    args = ap.parse_args(argv)
    made = build(Path(args.dest).resolve(), args.source)
    print(f"gpu_mimic: {made['python']}: {len(made['kept'])} of the machine's packages; left out "
          f"{len(made['left_out'])} it does not have ({', '.join(made['left_out'][:12])}, ...)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
