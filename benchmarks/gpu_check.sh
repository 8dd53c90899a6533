#!/usr/bin/env bash
# One check of the GPU paths (issue #22): sets up a fresh CUDA machine, runs the CUDA tests (tests/test_cuda_paths.py:
# txt2img, img2img, inpainting, hires fix, SDXL with its refiner, LoRA, every precision flag, --medvram, --medvram-sdxl,
# --lowvram, automatic placement, the NaN check and fp32 VAE retry, tiled VAE, --compile, the GPU/NV noise against the
# reference vectors) and the pipeline benchmark (demo, SD1.5, SDXL; SDXL's memory modes; --compile last), and prints
# one table (each part and how it ended; each test; each target against the figures).
#
#   bash benchmarks/gpu_check.sh                 # on a fresh machine: creates ./venv, installs torch (TORCH_COMMAND)
#                                                # and the project with its test extras, then checks
#   VENV_DIR=/path/venv bash benchmarks/gpu_check.sh          # use (and complete) an existing virtual environment
#   GPU_CHECK_SKIP_INSTALL=1 VENV_DIR=... bash benchmarks/gpu_check.sh   # install nothing
#   GPU_CHECK_WHEELS=.whl bash benchmarks/gpu_check.sh        # a machine with torch but no package index: python3
#       (or VENV_DIR's python) as it is, plus the wheels in .whl (made here by benchmarks/gpu_check_wheels.sh),
#       installed with --no-index --no-deps into a folder on PYTHONPATH; the project itself runs from this checkout
#
# On the device machine lent to a session (one H200, python3 with torch, no network), with the `run` tool:
#   here, once:  bash benchmarks/gpu_check_wheels.sh          # ~6.5 MB of wheels into .whl/ (git-ignored)
#   run:  command "GPU_CHECK_WHEELS=.whl GPU_CHECK_OUT=$OUT bash benchmarks/gpu_check.sh", carry [".whl"], timeout_s 600
# $OUT then brings back 7 files (the tests' log and XML, the benchmark's table and JSON, the load figures, table.md).
#
# Time: on CUDA the whole run is held to GPU_CHECK_BUDGET_S (default 540 s, so one 10-minute command holds it): the
# CUDA tests get at most 240 s, the load-memory check 60 s, the benchmark whatever is left. A part that reaches its
# limit is interrupted (SIGINT: pytest still writes its XML, the benchmark has saved each finished part) and the table
# says TIMED OUT on its row; the table is always printed.
#
# Without CUDA it says "no CUDA: CPU parts only" and still runs everything the CPU can: the CPU tests of these paths,
# the CUDA tests' collection (they skip), and the benchmark on the demo model and on a tiny SDXL checkpoint (add SD1.5
# with GPU_CHECK_CPU_SD15=1, and the 2 GB load-memory check with GPU_CHECK_LOAD=1; both need ~9 GB of RAM).
# Outputs land in $GPU_CHECK_OUT (default: a temp folder): the pytest log and XML, the benchmark tables and JSON, the
# table. Scratch (the data folder, the installed wheels, tiny checkpoints) goes to $GPU_CHECK_WORK (default: a temp
# folder), so that $GPU_CHECK_OUT holds only the few files worth bringing back.
set -u
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
VENV_GIVEN="${VENV_DIR:-}"
VENV_DIR="${VENV_DIR:-$ROOT/venv}"
OUT="${GPU_CHECK_OUT:-$(mktemp -d -t sdwebui-gpu-check-XXXXXX)}"
WORK="${GPU_CHECK_WORK:-}"
if [ -z "$WORK" ]; then
    WORK="$(mktemp -d -t sdwebui-gpu-check-work-XXXXXX)"
    trap 'rm -rf "$WORK"' EXIT
fi
mkdir -p "$OUT" "$WORK"
# a reused output folder must not lend an earlier run's results to this run's table
rm -f "$OUT"/cuda-tests.* "$OUT"/cpu-tests.* "$OUT"/pipeline*.txt "$OUT"/pipeline.json "$OUT"/load.* "$OUT"/table.md
START=$(date +%s)
say() { echo "[gpu_check $(( $(date +%s) - START ))s] $*"; }

# ---- environment -----------------------------------------------------------------------------------------------------
if [ -n "${GPU_CHECK_WHEELS:-}" ]; then
    PY="${VENV_GIVEN:+$VENV_GIVEN/bin/python}"
    PY="${PY:-python3}"
    compgen -G "$GPU_CHECK_WHEELS/*.whl" > /dev/null \
        || { echo "no wheels in $GPU_CHECK_WHEELS: run benchmarks/gpu_check_wheels.sh where pip works"; exit 2; }
    say "installing the carried wheels ($(ls "$GPU_CHECK_WHEELS" | grep -c '\.whl$')) for $PY into $WORK/site"
    # --target rather than a --system-site-packages venv: the machine's python3 may itself be a venv, whose packages
    # a venv made over it would not see
    "$PY" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target "$WORK/site" \
        "$GPU_CHECK_WHEELS"/*.whl || { echo "installing the wheels in $GPU_CHECK_WHEELS failed"; exit 2; }
    export PYTHONPATH="$WORK/site${PYTHONPATH:+:$PYTHONPATH}"
else
    if [ ! -x "$VENV_DIR/bin/python" ]; then
        say "creating the virtual environment $VENV_DIR"
        python3 -m venv "$VENV_DIR" || { echo "cannot create $VENV_DIR"; exit 2; }
    fi
    PY="$VENV_DIR/bin/python"
    if [ -z "${GPU_CHECK_SKIP_INSTALL:-}" ]; then
        say "installing torch (TORCH_COMMAND=${TORCH_COMMAND:-pip install torch torchvision}) and the project's test extras"
        VENV_DIR="$VENV_DIR" "$PY" -c "import launch; launch.prepare_environment(extras='test')" || { echo "installation failed"; exit 2; }
    fi
fi
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 GRADIO_ANALYTICS_ENABLED=False
export SD_WEBUI_DATA_DIR="$WORK/data"
# what the engine, the tests and the benchmark import: a missing one is named now, not deep in a log
"$PY" -c "import torch, torchvision, transformers, tokenizers, safetensors, numpy, PIL, scipy, einops, yaml, psutil, \
tqdm, lark, piexif, torchsde, diffusers, pytest" || { echo "a package is missing (named above): nothing checked"; exit 2; }

if "$PY" -c "import sys, torch; sys.exit(0 if torch.cuda.is_available() else 1)"; then
    MODE=cuda
    say "CUDA: $("$PY" -c "import torch; p = torch.cuda.get_device_properties(0); print(f'{p.name}, {p.total_memory / 2**30:.0f} GiB, torch {torch.__version__}, CUDA {torch.version.cuda}')")"
    DEADLINE=$(( START + ${GPU_CHECK_BUDGET_S:-540} ))
else
    MODE=cpu
    say "no CUDA: CPU parts only"
    DEADLINE=$(( START + ${GPU_CHECK_BUDGET_S:-100000} ))
fi

REPORT=(--mode "$MODE")
# run_part LABEL LIMIT_S OK_CODES STDOUT STDERR ARGS...: "$PY" ARGS for at most LIMIT_S seconds and never past the
# deadline, then interrupted (SIGINT, which `timeout` hands its child at its default even from a background job whose
# SIGINT is ignored; killed 20 s later); its row goes into the table, with the exit codes in OK_CODES as finishing.
run_part() {
    local label="$1" limit="$2" ok="$3" out="$4" err="$5" began rc code
    shift 5
    local left=$(( DEADLINE - $(date +%s) - 25 ))
    [ "$left" -lt "$limit" ] && limit=$left
    if [ "$limit" -le 0 ]; then
        say "$label: no time left"
        REPORT+=(--part "$label" -1 0 0 "$err")
        return 1
    fi
    began=$(date +%s)
    if [ "$out" = "$err" ]; then
        timeout -s INT -k 20 "$limit" "$PY" "$@" > "$out" 2>&1
    else
        timeout -s INT -k 20 "$limit" "$PY" "$@" > "$out" 2> "$err"
    fi
    rc=$?
    for code in $ok; do [ "$rc" = "$code" ] && rc=0; done
    REPORT+=(--part "$label" "$rc" "$(( $(date +%s) - began ))" "$limit" "$err")
    [ "$rc" = 0 ]
}

# ---- tests (exit code 1: some tests failed, which their own rows show) -----------------------------------------------
if [ "$MODE" = cuda ]; then
    say "CUDA tests"
    run_part "CUDA tests" 240 1 "$OUT/cuda-tests.log" "$OUT/cuda-tests.log" -m pytest tests/test_cuda_paths.py -m cuda \
        -q -p no:cacheprovider -rs --junitxml="$OUT/cuda-tests.xml"
    tail -3 "$OUT/cuda-tests.log" 2> /dev/null
    REPORT+=(--junit "$OUT/cuda-tests.xml")
else
    say "CPU tests of the same paths (the CUDA tests are collected and skip)"
    run_part "CPU tests" 900 1 "$OUT/cpu-tests.log" "$OUT/cpu-tests.log" -m pytest tests/test_cuda_paths.py \
        tests/test_precision.py tests/test_lowvram.py tests/test_tiled_vae.py tests/test_compile.py tests/test_load_memory.py \
        -q -p no:cacheprovider -rs --junitxml="$OUT/cpu-tests.xml"
    tail -3 "$OUT/cpu-tests.log" 2> /dev/null
    REPORT+=(--junit "$OUT/cpu-tests.xml")
fi

# ---- load memory (before the benchmark, which then gets all the time that is left) ---------------------------------
if [ "$MODE" = cuda ] || [ -n "${GPU_CHECK_LOAD:-}" ]; then
    say "load memory (2 GB fp16 SD1.5 file on the CPU)"
    run_part "load memory" 60 "" "$OUT/load.json" "$OUT/load.log" benchmarks/benchmark_load_memory.py --json \
        && REPORT+=(--load "$OUT/load.json")
fi

# ---- benchmarks ------------------------------------------------------------------------------------------------------
if [ "$MODE" = cuda ]; then
    say "pipeline benchmark (demo, SD1.5, SDXL eager; SDXL --medvram-sdxl, --lowvram; SD1.5 and SDXL --compile last)"
    run_part "pipeline benchmark" 100000 "" "$OUT/pipeline.txt" "$OUT/pipeline.txt" benchmarks/benchmark_pipeline.py \
        --device cuda --models demo,sd15,sdxl --warmup 1 --repeats 3 --memory-modes sdxl --compile sd15,sdxl \
        --json "$OUT/pipeline.json"
else
    MODELS=demo
    [ -n "${GPU_CHECK_CPU_SD15:-}" ] && MODELS=demo,sd15
    say "pipeline benchmark on the CPU ($MODELS)"
    run_part "pipeline benchmark (CPU)" 1800 "" "$OUT/pipeline.txt" "$OUT/pipeline.txt" benchmarks/benchmark_pipeline.py \
        --device cpu --models "$MODELS" --warmup 1 --repeats 2 --json "$OUT/pipeline.json"
    # SDXL at its real widths needs ~20 GB of RAM on the CPU: its code path (diffusers' SDXL pipeline beside ours) runs
    # on a tiny SDXL checkpoint instead
    say "pipeline benchmark on the CPU: a tiny SDXL checkpoint (random weights)"
    TINY_SDXL="$WORK/tiny-sdxl.safetensors" "$PY" -c "import os; from tests import checkpoint_factory as f
f.make_family_checkpoint(os.environ['TINY_SDXL'], 'sdxl')" > "$WORK/tiny-sdxl.log" 2>&1 || tail -5 "$WORK/tiny-sdxl.log"
    run_part "pipeline benchmark (CPU, tiny SDXL)" 600 "" "$OUT/pipeline-tiny-sdxl.txt" "$OUT/pipeline-tiny-sdxl.txt" \
        benchmarks/benchmark_pipeline.py --device cpu --file "$WORK/tiny-sdxl.safetensors" --side 64 --steps 4 --warmup 1 \
        --repeats 2
    grep '^|' "$OUT/pipeline-tiny-sdxl.txt" 2> /dev/null || tail -20 "$OUT/pipeline-tiny-sdxl.txt" 2> /dev/null
fi
grep '^|' "$OUT/pipeline.txt" 2> /dev/null || tail -20 "$OUT/pipeline.txt" 2> /dev/null
REPORT+=(--pipeline "$OUT/pipeline.json")

# ---- the table -------------------------------------------------------------------------------------------------------
say "done; outputs in $OUT"
"$PY" benchmarks/gpu_check_report.py "${REPORT[@]}" | tee "$OUT/table.md"
exit "${PIPESTATUS[0]}"
