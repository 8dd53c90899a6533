#!/usr/bin/env bash
# The wheels that benchmarks/gpu_check.sh needs on a machine that has torch but no package index (the device machine
# lent to a session: python3 with torch, torchvision, transformers, tokenizers, safetensors, numpy, pillow, scipy,
# einops, pyyaml, psutil, tqdm, pytest, accelerate, huggingface_hub, triton, and no network). Run it here, where pip
# reaches an index; the folder then travels with the check (`carry`) and GPU_CHECK_WHEELS=FOLDER installs it there.
#
#   bash benchmarks/gpu_check_wheels.sh [PYTHON_VERSION [FOLDER]]     # default: 3.12 (the device's python3), ./.whl
#
# The list: what the engine, the CUDA tests, their CPU counterparts and the benchmark import that such a machine
# lacks (found by running them and mapping sys.modules to distributions): the engine's prompt parser (lark), infotext
# writer (piexif) and SDE samplers (torchsde, and its trampoline), and diffusers, the benchmark's reference. The
# versions are those the project's venv runs; all are pure-Python wheels (--no-deps: their needs are on that machine).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
PYTHON_VERSION="${1:-3.12}"
DEST="${2:-$ROOT/.whl}"
WHEELS=(diffusers==0.42.1 lark==1.3.1 piexif==1.1.3 torchsde==0.2.6 trampoline==0.1.2)

mkdir -p "$DEST"
DEST="$(cd "$DEST" && pwd)"
rm -f "$DEST"/*.whl  # one version of each: two would stop the install there
"${PIP_PYTHON:-python3}" -m pip download -q --no-deps --only-binary=:all: --python-version "$PYTHON_VERSION" \
    --implementation cp --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 \
    --platform manylinux2014_x86_64 \
    -d "$DEST" "${WHEELS[@]}"

ls -l "$DEST"/*.whl | awk '{printf "%9.2f MiB  %s\n", $5 / 1048576, $NF}'
wheels=$(du -cb "$DEST"/*.whl | tail -1 | cut -f1)
cd "$ROOT"
# what travels besides: tracked files and untracked ones git does not ignore
tree=$( { git ls-files -z; git ls-files -z -o --exclude-standard; } | xargs -0 -r du -cb 2>/dev/null \
    | awk '$2 == "total" {sum += $1} END {print sum + 0}')
echo "wheels $(( wheels / 1048576 )) MiB + working tree $(( tree / 1048576 )) MiB" \
    "= $(( (wheels + tree) / 1048576 )) MiB of the 64 MiB that may travel"
case "$DEST" in
    "$ROOT"/*) git check-ignore -q "$DEST" \
        || echo "warning: git does not ignore $DEST, so it travels as part of the tree (and may be committed)" ;;
esac
