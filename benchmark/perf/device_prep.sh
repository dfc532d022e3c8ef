#!/usr/bin/env bash
# Run HERE (the development machine), before a session's device call: the GPU machine's image has
# torch, torchvision, numpy, scipy, pandas, matplotlib, tabulate, tqdm and opencv, but not
# segment-anything or py-sod-metrics, and it cannot download. Both are pure-Python wheels; this
# puts them in .whl/ (kept out of git), which the device call carries (`carry: [".whl"]`).
# sam2 is not needed for the issue-10 rows (SAM ViT-H only; sam2 is imported only for SAM2 backbones).
#
#   bash benchmark/perf/device_prep.sh        # then, as the device command (one line):
#   python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site \
#     .whl/*.whl && export PYTHONPATH=/tmp/site:$PWD && PYTHON=python3 bash benchmark/perf/gpu_script.sh "$OUT" 1
set -eu
mkdir -p .whl
exclude=.git/info/exclude
if [ -d .git ] && ! grep -qx '/.whl/' "$exclude" 2>/dev/null; then echo /.whl/ >> "$exclude"; fi
python3 -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
  --platform manylinux_2_28_x86_64 --platform manylinux2014_x86_64 -d .whl \
  segment-anything==1.0 pysodmetrics==1.6.2
ls .whl
