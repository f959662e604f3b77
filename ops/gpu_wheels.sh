#!/usr/bin/env bash
# Downloads into .whl/ the wheels the trainer and the sweep command need that the GPU
# image lacks (it has jax 0.11.2, numpy, optax, chex, pillow, opencv, psutil and pytest;
# not ninjax, elements, ruamel.yaml, ale-py or gymnasium, nor typer and its own
# dependencies, which dreamer-sweep needs). ops/tests/test_device_image.py keeps the trainer and
# the sweep's local backend within these packages.
# scope and av (62 MB) stay behind: dreamerv3/scopefile.py writes scope's files
# and OpenCV encodes the open-loop video. ops/device_run.sh installs them there.
#   bash ops/gpu_wheels.sh          # then carry .whl in the device call
set -euo pipefail
cd "$(dirname "$0")/.."
rm -rf .whl && mkdir -p .whl
python3 -m pip download --quiet --no-deps --only-binary=:all: --dest .whl \
  --python-version 3.12 --implementation cp \
  --platform manylinux_2_28_x86_64 --platform manylinux_2_27_x86_64 \
  --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 \
  ninjax==3.6.3 elements==3.22.4 ruamel.yaml==0.19.1 ale-py==0.12.1 \
  gymnasium==1.4.0 farama-notifications==0.0.6 \
  typer==0.29.2 rich==15.0.0 markdown-it-py==4.3.0 mdurl==0.1.2 pygments==2.21.0 \
  shellingham==1.5.4 annotated-doc==0.0.7 pydantic==2.14.4 pydantic-core==2.50.5 \
  annotated-types==0.8.0 typing-inspection==0.4.5
ls -la .whl
