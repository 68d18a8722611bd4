#!/usr/bin/env bash
# The Python environment of the bring-your-own-backbone converters and their check
# (weights/convert/byo_*.py, tests/python/check_byo.py, run by tests/byo_backbones.rs): a
# venv under the cache folder on Debian's python3, with exact pins, created once and
# checked on every call (idempotent). Prints the venv's python on stdout.
#
# PyTorch: PyPI's only Linux wheel of torch is the CUDA build. Its libraries link the CUDA
# runtime (libtorch_cpu needs libcudart and libcupti, libtorch_python libcudnn and
# libcufile, libtorch_cuda the rest), so `import torch` fails without the nvidia-* wheels
# even on a machine without a GPU. Everything is therefore installed with --no-deps from
# the list below, which holds only the CUDA wheels whose libraries the dynamic loader
# needs when torch is imported, and leaves out what torch declares but a CPU-only import
# and export never load: triton (1 GB), cuSOLVER (loaded lazily by linalg), NVTX, the
# CCCL headers and the cuda-python bindings. The venv is about 4.5 GB instead of 5.3 GB.
# torchvggish is installed without resampy and soundfile: the check loads its model and
# mel_features modules by path, not the package's __init__ (which imports both).
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
CACHE=${AFFECT_CACHE_DIR:-$ROOT/.cache}
PINS=(
  torch==2.15.0 torchvision==0.29.2 timm==1.0.31 transformers==5.23.0 torchvggish==0.2
  onnx==1.23.2 onnxruntime==1.31.1 onnxscript==0.7.2 onnx-ir==1.1.0 numpy==2.4.6
  pillow==13.0.0 safetensors==0.8.0 tokenizers==0.23.3 huggingface_hub==2.4.0
  nvidia-cublas==13.4.1.3 nvidia-cuda-cupti==13.2.86 nvidia-cuda-nvrtc==13.2.86
  nvidia-cuda-runtime==13.2.86 nvidia-cudnn-cu13==9.26.0.51 nvidia-cufft==12.2.0.57
  nvidia-cufile==1.17.1.22 nvidia-cusparse==12.7.10.12 nvidia-cusparselt-cu13==0.8.1
  nvidia-nccl-cu13==2.30.7 nvidia-nvjitlink==13.5.37 nvidia-nvshmem-cu13==3.7.2
  annotated-doc==0.0.7 annotated-types==0.8.0 anyio==4.16.0 click==8.5.1 filelock==4.3.2
  flatbuffers==25.12.19 fsspec==2026.9.0 h11==0.16.0 hf-xet==1.8.0 httpcore2==2.17.0
  httpx2==2.17.0 idna==3.21 Jinja2==3.1.6 markdown-it-py==4.3.0 MarkupSafe==3.0.4
  mdurl==0.1.2 ml_dtypes==0.7.0 mpmath==1.3.0 networkx==3.6.1 packaging==26.4
  protobuf==7.36.2 pydantic==2.14.4 pydantic_core==2.50.5 Pygments==2.21.0 PyYAML==6.0.4
  regex==2026.12.2 rich==15.0.0 shellingham==1.5.4 sympy==1.14.0 tqdm==4.70.1
  truststore==0.10.5 typer==0.29.2 typing-inspection==0.4.5 typing_extensions==4.16.0
)
. "$ROOT/tests/python/pinned-venv.sh"
ARGS=(--no-deps)
pinned_venv byo-venv PINS ARGS
