#!/usr/bin/env bash
# The GPU checks of sktap in one run (333 s on an H100, 2026-11-27):
#
#   1. env          nvidia-smi, python / torch / CUDA / cuDNN versions
#   2. pytest_gpu   python -m pytest -m gpu -q (tests marked gpu)
#   3. bench_cdist  benchmarks/bench_cdist.py --device cuda, float32 and bf16
#                   side by side, L = 40, d = 13, default TAPNet, 1024 x 2048
#                   pairs (enough to time >= 1,000,000 pairs/s), with the
#                   per-pair loop, without tslearn's CPU rows
#   4. bench_train  benchmarks/bench_train.py --device cuda --compare-cpu
#                   --cpu-threads 2: a training epoch on CUDA against the
#                   same on 2 CPU threads of that machine
#   5. accuracy     benchmarks/bench_accuracy.py on CUDA, the default learner
#                   in float32 and in bfloat16, one after the other (DTW
#                   rows from benchmarks/results/baselines.json)
#   6. profile      bench_cdist --profile on lengths 30-50: time per layer
#   7. variants     benchmarks/bench_cuda_variants.py: frame distances and
#                   last layer, the accelerator variants side by side
#
# Usage, from anywhere (it cds to the repository root):
#
#   bash benchmarks/gpu_check.sh             # on the GPU machine
#   bash benchmarks/gpu_check.sh --dry-run   # here: CPU stand-ins, no CUDA
#   GPU_CHECK_DRY_RUN=1 bash benchmarks/gpu_check.sh   # the same
#
# Every step's output goes to $OUT/<step>.log when $OUT is set (the device
# runner brings that folder back; at most 8 files, so there are 7 logs with
# env.log, and summary.txt), else to benchmarks/results/gpu/. A failing step is recorded
# and the next one runs; the exit status is non-zero if any step failed.
#
# Nothing is downloaded. Python is $PYTHON if set, else python3 (the GPU
# image's python3 holds torch), else python. The repository root goes on
# PYTHONPATH, so sktap needs no install. Packages the GPU image lacks
# (tslearn for sktap itself) can travel as wheels in ./.whl (see
# /work/.library/device/README.md): any *.whl there is installed offline
# (--no-index --no-deps) into a temporary folder first. The real data sets
# of bench_train and bench_accuracy travel as copies of aeon's .ts files in
# ./.gpu_data/<Name>/ (read through SKTAP_BENCH_DATA, see
# benchmarks/_datasets.py); make that folder here with
#
#   for n in ItalyPowerDemand JapaneseVowels BasicMotions GunPoint \
#            PickupGestureWiimoteZ ArrowHead; do mkdir -p .gpu_data/$n
#       cp "$(python -c 'import aeon,os;print(os.path.dirname(aeon.__file__))')"/datasets/data/$n/${n}_T*.ts .gpu_data/$n/
#   done
#
# Environment: GPU_CHECK_BUDGET (seconds for all steps, default 450),
# GPU_CHECK_TRAIN_EPOCHS (bench_train --epochs, default 3),
# GPU_CHECK_ACCURACY_SETS (bench_accuracy --datasets, default all seven),
# GPU_CHECK_STEPS (comma-separated steps to run, default all; env always
# runs).

set -euo pipefail
cd "$(dirname "$0")/.."
repo=$(pwd)

dry_run=${GPU_CHECK_DRY_RUN:-0}
for arg in "$@"; do
    case "$arg" in
        --dry-run) dry_run=1 ;;
        -h | --help)
            sed -n '2,33p' "$0" | sed 's/^# \{0,1\}//'
            exit 0
            ;;
        *)
            echo "gpu_check.sh: unknown argument $arg (try --help)" >&2
            exit 2
            ;;
    esac
done

out_dir=${OUT:-$repo/benchmarks/results/gpu}
mkdir -p "$out_dir"
summary="$out_dir/summary.txt"
: >"$summary"

if [ -n "${PYTHON:-}" ]; then
    py=$PYTHON
elif command -v python3 >/dev/null 2>&1; then
    py=python3
else
    py=python
fi
export PYTHONPATH="$repo${PYTHONPATH:+:$PYTHONPATH}"
export PYTHONUNBUFFERED=1

budget=${GPU_CHECK_BUDGET:-450}
deadline=$(($(date +%s) + budget))
failures=()

note() {
    echo "$*" | tee -a "$summary"
}

# step NAME LIMIT_S CMD...: run CMD with its output in NAME.log (and on
# stdout), within LIMIT_S seconds and what is left of the budget; record
# the outcome and never stop the script.
step() {
    local name=$1 limit=$2
    shift 2
    local log="$out_dir/$name.log" left rc=0 start
    if [ -n "${GPU_CHECK_STEPS:-}" ] && [ "$name" != env ] &&
        [[ ",$GPU_CHECK_STEPS," != *",$name,"* ]]; then
        return 0
    fi
    left=$((deadline - $(date +%s)))
    if [ "$left" -lt 15 ]; then
        note "[$name] SKIPPED: the time budget (${budget} s) is spent"
        failures+=("$name (not run)")
        return 0
    fi
    if [ "$limit" -gt "$left" ]; then
        limit=$left
    fi
    echo "+ $*" | tee "$log"
    start=$(date +%s)
    if declare -F "$1" >/dev/null; then
        # a function of this script (timeout runs only programs)
        "$@" 2>&1 | tee -a "$log" || rc=$?
    else
        timeout --kill-after=10 "$limit" "$@" 2>&1 | tee -a "$log" || rc=$?
    fi
    local took=$(($(date +%s) - start))
    if [ "$rc" -eq 0 ]; then
        note "[$name] ok (${took} s)"
    elif [ "$rc" -eq 124 ] || [ "$rc" -eq 137 ]; then
        note "[$name] FAILED: timed out after ${limit} s (see $name.log)"
        failures+=("$name")
    else
        note "[$name] FAILED: exit status $rc after ${took} s (see $name.log)"
        failures+=("$name")
    fi
}

env_info() {
    if [ "$dry_run" = 1 ]; then
        echo "dry run: nvidia-smi not run"
    elif command -v nvidia-smi >/dev/null 2>&1; then
        nvidia-smi
    else
        echo "nvidia-smi: not found"
        return 1
    fi
    echo
    "$py" - "$dry_run" <<'EOF'
import platform
import sys

import torch

print("python", platform.python_version(), sys.executable)
print("torch", torch.__version__, "| built for CUDA", torch.version.cuda)
print("cuDNN", torch.backends.cudnn.version() if torch.cuda.is_available() else "-")
print("CUDA available:", torch.cuda.is_available())
if torch.cuda.is_available():
    for i in range(torch.cuda.device_count()):
        p = torch.cuda.get_device_properties(i)
        print(f"device {i}: {p.name}, {p.total_memory / 2**30:.1f} GiB, "
              f"{p.multi_processor_count} SMs, capability {p.major}.{p.minor}")
print("TF32 matmul / cuDNN:", torch.backends.cuda.matmul.allow_tf32,
      torch.backends.cudnn.allow_tf32)
missing = []
for name in ("numpy", "sklearn", "joblib", "tqdm", "tslearn", "pytest", "hypothesis"):
    try:
        __import__(name)
    except ImportError:
        missing.append(name)
try:
    import sktap
    print("sktap", sktap.__version__, "from", sktap.__file__)
except ImportError as exc:
    print("sktap does not import:", exc)
    missing.append("sktap")
if missing:
    print("MISSING:", ", ".join(missing), "(carry wheels in .whl)")
if sys.argv[1] != "1" and not torch.cuda.is_available():
    sys.exit("CUDA is not available")
sys.exit(1 if missing else 0)
EOF
}

mode="GPU run"
if [ "$dry_run" = 1 ]; then
    mode="DRY RUN: CPU stand-ins, CUDA-only steps skipped"
fi
note "gpu_check $(date -Is) on $(hostname) ($mode); python: $py; output: $out_dir"

# Offline wheels, if any travelled with the tree.
if compgen -G "$repo/.whl/*.whl" >/dev/null; then
    site=$(mktemp -d)
    note "installing $(ls "$repo"/.whl/*.whl | wc -l) wheel(s) from .whl into $site"
    if "$py" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir \
        --target "$site" "$repo"/.whl/*.whl >"$out_dir/wheels.log" 2>&1; then
        export PYTHONPATH="$PYTHONPATH:$site"
        rm -f "$out_dir/wheels.log"
    else
        note "[wheels] FAILED: see wheels.log"
        failures+=("wheels")
    fi
fi

if [ -z "${SKTAP_BENCH_DATA:-}" ] && [ -d "$repo/.gpu_data" ]; then
    export SKTAP_BENCH_DATA="$repo/.gpu_data"
fi

step env 60 env_info

# Collection errors of CPU-only test modules (e.g. an optional package
# missing there) must not hide the GPU tests.
step pytest_gpu 90 "$py" -m pytest -m gpu -q -p no:cacheprovider \
    --continue-on-collection-errors

if [ "$dry_run" = 1 ]; then
    # the same script paths on the CPU, at toy sizes
    device=cpu
    bench=(--device cpu --quick --n-x 8 --n-y 8 --repeats 1 --skip-length-scan)
    cdist_args=("${bench[@]}" --lengths 40 40 --skip-tslearn)
    profile_args=("${bench[@]}" --skip-baselines --profile)
    train_args=(--device cpu --epochs 1 --datasets BasicMotions)
    accuracy_args=(--quick --datasets BasicMotions)
    variants_args=(--device cpu --n-x 8 --n-y 8 --repeats 1)
else
    device=cuda
    cdist_args=(--device cuda --n-x 1024 --n-y 2048 --lengths 40 40 --repeats 2
        --skip-tslearn --skip-length-scan)
    profile_args=(--device cuda --n-x 512 --n-y 512 --repeats 1 --skip-baselines
        --skip-length-scan --profile)
    train_args=(--device cuda --compare-cpu --cpu-threads 2
        --epochs "${GPU_CHECK_TRAIN_EPOCHS:-3}")
    variants_args=(--device cuda --n-x 512 --n-y 1024 --repeats 2)
    accuracy_args=(--datasets "${GPU_CHECK_ACCURACY_SETS:-ItalyPowerDemand,JapaneseVowels,BasicMotions,GunPoint,PickupGestureWiimoteZ,ArrowHead,Trace}")
fi

# accuracy_both ARGS...: the learned TAP rows of bench_accuracy in float32,
# then in bfloat16, on $device (same seed, same data), each within
# GPU_CHECK_ACCURACY_S seconds (default 80); the DTW rows come from a copy
# of benchmarks/results/baselines.json (no tslearn run on that machine's CPU)
accuracy_both() {
    local precision rc=0 cache
    cache=$(mktemp -d)/baselines.json
    cp benchmarks/results/baselines.json "$cache"
    for precision in float32 bfloat16; do
        echo "### learned TAP, precision $precision, device $device"
        timeout --kill-after=10 "${GPU_CHECK_ACCURACY_S:-80}" \
            "$py" benchmarks/bench_accuracy.py "$@" --no-sdtw-learner \
            --baselines-cache "$cache" \
            --tap-params "{\"device\": \"$device\", \"precision\": \"$precision\"}" \
            || rc=$?
    done
    return "$rc"
}

step bench_cdist 150 "$py" benchmarks/bench_cdist.py "${cdist_args[@]}"
step variants 90 "$py" benchmarks/bench_cuda_variants.py "${variants_args[@]}"
step bench_train 120 "$py" benchmarks/bench_train.py "${train_args[@]}"
step accuracy 170 accuracy_both "${accuracy_args[@]}"
step profile 45 "$py" benchmarks/bench_cdist.py "${profile_args[@]}"

if [ "${#failures[@]}" -gt 0 ]; then
    note "FAILED steps: ${failures[*]}"
    exit 1
fi
note "all steps passed"
