#!/usr/bin/env bash
# Reproduce every table of the Conv-LoRA paper, end to end.
#
#   ./run_all.sh                 set up .venv (first time) and run the SMOKE reproduction: every
#                                method x Conv-LoRA's seven domains x 3 seeds on synthetic data, fine-tuning a
#                                miniature SAM pretrained on synthetic scenes (built once and cached,
#                                `sam-peft-bench pretrain-mini`; a pipeline check, not the paper's
#                                numbers), then the exact #Params column at ViT-H and Tables 1 and 2.
#   ./run_all.sh --data-root DATA --checkpoint sam_vit_h_4b8939.pth
#                                the same grid with the official settings (`paper` preset).
#   ./run_all.sh --tests         set up .venv (first time) and run the test suite.
#
# Environment: VENV (default .venv), PYTHON (default python3), OUT (default runs/<preset>),
# SEEDS (default "0 1 2"), TORCH_SPEC (pip requirement for torch and torchvision).
set -euo pipefail
cd "$(dirname "$0")"

VENV=${VENV:-.venv}
PYTHON=${PYTHON:-python3}

setup() {
    if [ -x "$VENV/bin/sam-peft-bench" ] && "$VENV/bin/python" -c "import benchmark, segment_anything" 2>/dev/null; then
        return
    fi
    echo "== setting up $VENV" >&2
    "$PYTHON" -m venv "$VENV"
    "$VENV/bin/pip" install -qq --upgrade pip
    # torch and torchvision together from the registry (segment-anything imports torchvision);
    # the default build runs on CPU as well as on a GPU.
    if [ -n "${TORCH_SPEC:-}" ]; then
        # shellcheck disable=SC2086
        "$VENV/bin/pip" install -qq $TORCH_SPEC
    elif [ "$(uname -m)" = "aarch64" ]; then
        "$VENV/bin/pip" install -qq "torch==2.9.1" "torchvision==0.24.1"
    else
        "$VENV/bin/pip" install -qq "torch==2.14.1" "torchvision==0.29.1"
    fi
    "$VENV/bin/pip" install -qq -e ".[dev]"
}

if [ "${1:-}" = "--tests" ]; then
    shift
    setup
    exec "$VENV/bin/python" -m pytest "$@"
fi

DATA_ROOT=""
CHECKPOINT=""
EXTRA=()
while [ $# -gt 0 ]; do
    case "$1" in
        --data-root) DATA_ROOT=$2; shift 2 ;;
        --checkpoint) CHECKPOINT=$2; shift 2 ;;
        *) EXTRA+=("$1"); shift ;;
    esac
done

setup
BENCH="$VENV/bin/sam-peft-bench"
SEEDS=${SEEDS:-"0 1 2"}

if [ -n "$DATA_ROOT" ] || [ -n "$CHECKPOINT" ]; then
    if [ -z "$DATA_ROOT" ] || [ -z "$CHECKPOINT" ]; then
        echo "error: the paper preset needs both --data-root and --checkpoint" >&2
        exit 2
    fi
    PRESET=paper
    OUT=${OUT:-runs/paper}
    GRID_ARGS=(--preset paper --backbone sam_vit_h --data-root "$DATA_ROOT" --checkpoint "$CHECKPOINT" --save-predictions 2)
else
    PRESET=smoke
    OUT=${OUT:-runs/smoke}
    GRID_ARGS=(--preset smoke --save-predictions 2)
fi

# --save-predictions 2: two test images per test set and run, for the report's qualitative figure.
# The smoke grid is 252 small CPU runs (12 method rows, zero-shot included, x the 7 domains of
# Tables 1 and 2 x 3 seeds; the paper preset's grid also takes them all, `--domains table:1,table:2`):
# JOBS shards run side by side (one thread each), writing into one folder; `run --shard K/N` gives
# each a disjoint share. The paper preset runs one job (use `torchrun` or a SLURM array for more,
# see the README).
if [ "$PRESET" = smoke ]; then JOBS=${JOBS:-$(nproc 2>/dev/null || echo 1)}; else JOBS=${JOBS:-1}; fi
status=0
if [ "$PRESET" = smoke ]; then
    # SAM2 fundus step (issue 12): SAM2LoRA on SAM2.1 Hiera-T at 256x256 (random weights: no mini
    # recipe), both fundus tasks, trained with 5 points, every test prompt mode. A pipeline check:
    # one optimiser step, one image per validation and test set (docs/BENCHMARKS.md). Its own
    # folder: tables never mix two backbones.
    SAM2_OUT=${SAM2_OUT:-$OUT-sam2}
    SAM2_ARGS=(run --methods sam2lora --backbone sam2_tiny --domains fundus_vessel,fundus_od --seeds $SEEDS
               --out "$SAM2_OUT" --preset smoke --set prompt=points:5 --set eval_prompts=all --set epochs=1
               --set max_train_images=2 --set max_eval_images=1)
    # The SAM every other smoke run fine-tunes is built here once, on one thread (about 2 minutes,
    # then cached). Meanwhile the second core runs what does not need it: the SAM2 step and the
    # grid's from_scratch runs (random init; the grid below finds their records and skips them).
    echo "== beside the mini-SAM's build: the SAM2 fundus step -> $SAM2_OUT, and from_scratch -> $OUT" >&2
    (
        side=0
        # shellcheck disable=SC2086
        for cmd in sam2 from_scratch; do
            rc=0
            if [ "$cmd" = sam2 ]; then "$BENCH" "${SAM2_ARGS[@]}" --no-progress || rc=$?
            else "$BENCH" run --methods from_scratch --domains table:1,table:2 --seeds $SEEDS --out "$OUT" \
                     "${GRID_ARGS[@]}" "${EXTRA[@]}" --no-progress || rc=$?; fi
            if [ "$rc" -eq 2 ] || { [ "$rc" -ne 0 ] && [ "$side" -eq 0 ]; }; then side=$rc; fi
        done
        exit "$side"
    ) &
    side_pid=$!
    MINI=$("$BENCH" pretrain-mini) || { wait "$side_pid"; exit 2; }
    echo "== miniature pretrained SAM: $MINI" >&2
    wait "$side_pid" || status=$?
    if [ "$status" -eq 2 ]; then exit 2; fi
fi
echo "== grid: all methods x the domains of Tables 1 and 2 x seeds $SEEDS ($PRESET preset, $JOBS job(s)) -> $OUT" >&2
if [ "$JOBS" -le 1 ]; then
    # shellcheck disable=SC2086
    "$BENCH" run --methods all --domains table:1,table:2 --seeds $SEEDS --out "$OUT" "${GRID_ARGS[@]}" "${EXTRA[@]}" || { rc=$?; [ "$status" -eq 2 ] || status=$rc; }
else
    pids=()
    for k in $(seq 1 "$JOBS"); do
        # shellcheck disable=SC2086
        "$BENCH" run --methods all --domains table:1,table:2 --seeds $SEEDS --out "$OUT" --shard "$k/$JOBS" \
            "${GRID_ARGS[@]}" "${EXTRA[@]}" $([ "$k" -gt 1 ] && echo --no-progress) &
        pids+=($!)
    done
    for pid in "${pids[@]}"; do wait "$pid" || { rc=$?; [ "$status" -eq 2 ] || status=$rc; }; done
fi

# Exit code 2 is bad input (unknown method, missing data or checkpoint): nothing ran, stop here.
# Exit code 1 means some runs failed; their records say why, and the tables show the rest.
if [ "$status" -eq 2 ]; then exit 2; fi

if [ "$PRESET" = smoke ]; then
    echo
    echo "SMOKE RESULTS: synthetic data, a miniature SAM pretrained on synthetic scenes. A pipeline check, NOT the paper's numbers."
fi
echo
echo "## #Params (M) / Ratio (%) at SAM ViT-H (exact, no weights needed)"
"$BENCH" params --backbone sam_vit_h
echo
for t in 1 2; do
    echo "## Table $t: ours ($PRESET preset)"
    "$BENCH" table --table "$t" --source runs --runs "$OUT"
    echo
    echo "## Table $t: published (Conv-LoRA, ICLR 2024)"
    "$BENCH" table --table "$t" --source paper
    echo
done
if [ "$PRESET" = smoke ]; then
    echo "## SAM2LoRA by prompt mode: ours (smoke preset, sam2_tiny, random weights)"
    "$BENCH" table --table sam2lora --source runs --runs "$SAM2_OUT"
    echo
    echo "## SAM2LoRA by prompt mode: published (Mandal et al., arXiv 2510.10288)"
    "$BENCH" table --table sam2lora --source paper
    echo
    "$BENCH" report --runs "$SAM2_OUT" --out "$SAM2_OUT/report.md" >&2 && echo "SAM2 step report: $SAM2_OUT/report.md" >&2
fi
"$BENCH" report --runs "$OUT" --out "$OUT/report.md" >&2 && echo "report with the cell-by-cell comparison: $OUT/report.md" >&2
exit $status
