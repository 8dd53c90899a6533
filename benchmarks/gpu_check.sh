#!/usr/bin/env bash
# One check of the GPU paths (issue #22): sets up a fresh CUDA machine, runs the CUDA tests (tests/test_cuda_paths.py:
# txt2img, img2img, inpainting, hires fix, SDXL with its refiner, LoRA, every precision flag, --medvram, --medvram-sdxl,
# --lowvram, automatic placement, the NaN check and fp32 VAE retry, tiled VAE, --compile, the GPU/NV noise against the
# reference vectors) and the pipeline benchmark (demo, SD1.5, SDXL; --compile; SDXL's memory modes), and prints one
# table (each test; each target against the figures). About 8 minutes on an H100.
#
#   bash benchmarks/gpu_check.sh                 # on a fresh machine: creates ./venv, installs torch (TORCH_COMMAND)
#                                                # and the project with its test extras, then checks
#   VENV_DIR=/path/venv bash benchmarks/gpu_check.sh          # use (and complete) an existing virtual environment
#   GPU_CHECK_SKIP_INSTALL=1 VENV_DIR=... bash benchmarks/gpu_check.sh   # install nothing
#
# Without CUDA it says "no CUDA: CPU parts only" and still runs everything the CPU can: the CPU tests of these paths,
# the CUDA tests' collection (they skip), and the benchmark on the demo model and on a tiny SDXL checkpoint (add SD1.5
# with GPU_CHECK_CPU_SD15=1, and the 2 GB load-memory check with GPU_CHECK_LOAD=1; both need ~9 GB of RAM).
# Outputs land in $GPU_CHECK_OUT (default: a temp folder): the pytest log and XML, the benchmark tables and JSON.
set -u
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
VENV_DIR="${VENV_DIR:-$ROOT/venv}"
OUT="${GPU_CHECK_OUT:-$(mktemp -d -t sdwebui-gpu-check-XXXXXX)}"
mkdir -p "$OUT"
START=$(date +%s)
say() { echo "[gpu_check $(( $(date +%s) - START ))s] $*"; }

# ---- environment -----------------------------------------------------------------------------------------------------
if [ ! -x "$VENV_DIR/bin/python" ]; then
    say "creating the virtual environment $VENV_DIR"
    python3 -m venv "$VENV_DIR" || { echo "cannot create $VENV_DIR"; exit 2; }
fi
PY="$VENV_DIR/bin/python"
if [ -z "${GPU_CHECK_SKIP_INSTALL:-}" ]; then
    say "installing torch (TORCH_COMMAND=${TORCH_COMMAND:-pip install torch torchvision}) and the project's test extras"
    VENV_DIR="$VENV_DIR" "$PY" -c "import launch; launch.prepare_environment(extras='test')" || { echo "installation failed"; exit 2; }
fi
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 GRADIO_ANALYTICS_ENABLED=False
export SD_WEBUI_DATA_DIR="$OUT/data"

if "$PY" -c "import sys, torch; sys.exit(0 if torch.cuda.is_available() else 1)"; then
    MODE=cuda
    say "CUDA: $("$PY" -c "import torch; p = torch.cuda.get_device_properties(0); print(f'{p.name}, {p.total_memory / 2**30:.0f} GiB, torch {torch.__version__}, CUDA {torch.version.cuda}')")"
else
    MODE=cpu
    say "no CUDA: CPU parts only"
fi

# ---- tests -----------------------------------------------------------------------------------------------------------
JUNITS=()
if [ "$MODE" = cuda ]; then
    say "CUDA tests"
    timeout 300 "$PY" -m pytest tests/test_cuda_paths.py -m cuda -q -p no:cacheprovider -rs \
        --junitxml="$OUT/cuda-tests.xml" > "$OUT/cuda-tests.log" 2>&1
    tail -3 "$OUT/cuda-tests.log"
    JUNITS+=(--junit "$OUT/cuda-tests.xml")
else
    say "CPU tests of the same paths (the CUDA tests are collected and skip)"
    timeout 900 "$PY" -m pytest tests/test_cuda_paths.py tests/test_precision.py tests/test_lowvram.py \
        tests/test_tiled_vae.py tests/test_compile.py tests/test_load_memory.py -q -p no:cacheprovider -rs \
        --junitxml="$OUT/cpu-tests.xml" > "$OUT/cpu-tests.log" 2>&1
    tail -3 "$OUT/cpu-tests.log"
    JUNITS+=(--junit "$OUT/cpu-tests.xml")
fi

# ---- benchmarks ------------------------------------------------------------------------------------------------------
if [ "$MODE" = cuda ]; then
    say "pipeline benchmark (demo, SD1.5, SDXL eager; SD1.5 and SDXL --compile; SDXL --medvram-sdxl, --lowvram)"
    timeout 420 "$PY" benchmarks/benchmark_pipeline.py --device cuda --models demo,sd15,sdxl --warmup 1 --repeats 3 \
        --compile sd15,sdxl --memory-modes sdxl --json "$OUT/pipeline.json" > "$OUT/pipeline.txt" 2>&1
else
    MODELS=demo
    [ -n "${GPU_CHECK_CPU_SD15:-}" ] && MODELS=demo,sd15
    say "pipeline benchmark on the CPU ($MODELS)"
    timeout 1800 "$PY" benchmarks/benchmark_pipeline.py --device cpu --models "$MODELS" --warmup 1 --repeats 2 \
        --json "$OUT/pipeline.json" > "$OUT/pipeline.txt" 2>&1
    # SDXL at its real widths needs ~20 GB of RAM on the CPU: its code path (diffusers' SDXL pipeline beside ours) runs
    # on a tiny SDXL checkpoint instead
    say "pipeline benchmark on the CPU: a tiny SDXL checkpoint (random weights)"
    TINY_SDXL="$OUT/tiny-sdxl.safetensors" "$PY" -c "import os; from tests import checkpoint_factory as f
f.make_family_checkpoint(os.environ['TINY_SDXL'], 'sdxl')" > "$OUT/tiny-sdxl.log" 2>&1 || tail -5 "$OUT/tiny-sdxl.log"
    timeout 600 "$PY" benchmarks/benchmark_pipeline.py --device cpu --file "$OUT/tiny-sdxl.safetensors" --side 64 \
        --steps 4 --warmup 1 --repeats 2 > "$OUT/pipeline-tiny-sdxl.txt" 2>&1
    grep '^|' "$OUT/pipeline-tiny-sdxl.txt" || tail -20 "$OUT/pipeline-tiny-sdxl.txt"
fi
grep '^|' "$OUT/pipeline.txt" || tail -20 "$OUT/pipeline.txt"
REPORT=(--mode "$MODE" "${JUNITS[@]}")
[ -f "$OUT/pipeline.json" ] && REPORT+=(--pipeline "$OUT/pipeline.json")

if [ "$MODE" = cuda ] || [ -n "${GPU_CHECK_LOAD:-}" ]; then
    say "load memory (2 GB fp16 SD1.5 file on the CPU)"
    timeout 300 "$PY" benchmarks/benchmark_load_memory.py --json > "$OUT/load.json" 2> "$OUT/load.log" \
        && REPORT+=(--load "$OUT/load.json")
fi

# ---- the table -------------------------------------------------------------------------------------------------------
say "done; outputs in $OUT"
"$PY" benchmarks/gpu_check_report.py "${REPORT[@]}"
