#!/usr/bin/env bash
# Issue 10's GPU rows, before and after, in one run on one GPU (nothing is downloaded, every model
# has random weights). Two parts, each held to DEADLINE (540 s) so that it fits one device call:
# part 1 the goal rows (about 5 minutes on an H100/H200, an estimate), part 2 the profiles, single
# layers, compile and the other methods' peaks (rows past the deadline are listed as skipped).
#
#   bash benchmark/perf/gpu_script.sh [OUT_DIR] [1|2]      # on the GPU machine, from the repository root; no part: both
#   BACKBONE=sam_tiny DEVICE=cpu PRECISION=fp32 STEPS=1 WARMUP=1 EPOCH_IMAGES=2 LAYER_REPEAT=1 LAYER_WARMUP=0 \
#     bash benchmark/perf/gpu_script.sh
#                                                          # the same plan on the CPU, to check the script
#
# Each row is one `sam-peft-bench bench ...` command under its own time limit; a failure (an
# out-of-memory included) is written to its log and the script goes on. Results: one JSON file per
# row in OUT_DIR (default: $OUT if set, else ./gpu-rows), plus summary-PART.md with the rows.
set -u
OUT_DIR=${1:-${OUT:-gpu-rows}}
PART=${2:-all}
BACKBONE=${BACKBONE:-sam_vit_h}
DEVICE=${DEVICE:-cuda}
PRECISION=${PRECISION:-bf16}
STEPS=${STEPS:-10}
WARMUP=${WARMUP:-3}
EPOCH_IMAGES=${EPOCH_IMAGES:-8}
LIMIT=${LIMIT:-150}  # seconds per row
# Seconds for the whole run: a part must end within one device call (at most 600 s); a row that
# would start past it is listed as skipped, and a running one is cut at it.
DEADLINE=${DEADLINE:-$([ "$PART" = all ] && echo 1080 || echo 540)}
PY=${PYTHON:-python}
mkdir -p "$OUT_DIR"
SUMMARY="$OUT_DIR/summary-$PART.md"
: > "$SUMMARY"
{ echo "# issue 10 GPU rows, part $PART: $BACKBONE, $PRECISION, $DEVICE"; date -u; nvidia-smi --query-gpu=name,memory.total --format=csv,noheader 2>/dev/null; git rev-parse --short HEAD 2>/dev/null; } >> "$SUMMARY"

row() {  # row NAME ARGS... : one bench command, JSON to NAME.json, markdown to the summary
  local name=$1; shift
  local left=$((DEADLINE - SECONDS))
  if [ "$left" -lt 30 ]; then
    echo "== $name: SKIPPED (the deadline, $DEADLINE s, is reached): sam-peft-bench bench $*" | tee -a "$SUMMARY"
    return
  fi
  echo "== $name: sam-peft-bench bench $*" | tee -a "$SUMMARY"
  local start=$SECONDS
  # timeout signals the command's whole process group: bench's per-method subprocesses end with it.
  local limit=$(( LIMIT < left ? LIMIT : left )) rc=0
  timeout "$limit" "$PY" -m benchmark bench "$@" --format json > "$OUT_DIR/$name.json" 2> "$OUT_DIR/$name.log" || rc=$?
  if [ "$rc" -eq 0 ]; then
    "$PY" -c "import json,sys; [print(json.dumps(r)) for r in json.load(open(sys.argv[1]))]" "$OUT_DIR/$name.json" >> "$SUMMARY"
  elif [ "$rc" -eq 124 ]; then
    echo "TIMED OUT after $limit s (what it printed: $OUT_DIR/$name.log)" | tee -a "$SUMMARY"
  else
    echo "FAILED (exit $rc): $(tail -n 1 "$OUT_DIR/$name.log")" | tee -a "$SUMMARY"
  fi
  echo "($((SECONDS - start)) s)" >> "$SUMMARY"
}

TS=(train-step --backbone "$BACKBONE" --device "$DEVICE" --precision "$PRECISION" --steps "$STEPS" --warmup "$WARMUP")
if [ "$PART" != 2 ]; then
# 1. Conv-LoRA / LoRA, LST / LoRA and the peak memory: before (segment-anything's attention, the
#    default AdamW), after (SDPA with the bias as its mask, fused AdamW) and with the bias folded
#    into q and k (no mask: the flash kernels qualify, nothing (N, N) is built).
row before "${TS[@]}" --methods lora,conv_lora,lst --attention sam
row after "${TS[@]}" --methods lora,conv_lora,lst --attention sdpa --fused
row folded "${TS[@]}" --methods lora,conv_lora,lst --attention folded --fused
#    Conv-LoRA's experts all at once (one sync per layer instead of one per expert).
row conv_lora_grouped "${TS[@]}" --methods conv_lora --attention folded --fused --moe-kernel grouped
# 2. Peak memory at batch 1 with activation checkpointing (goal <= 12 GiB for every PEFT method).
row checkpointing "${TS[@]}" --methods lora,conv_lora --attention sdpa --fused --checkpointing encoder
row folded_checkpointing "${TS[@]}" --methods lora,conv_lora --attention folded --fused --checkpointing encoder
# 3. from_scratch at ViT-H on an 80 GB card: without, then with checkpointing.
row from_scratch "${TS[@]}" --methods from_scratch --attention folded --fused
row from_scratch_checkpointing "${TS[@]}" --methods from_scratch --attention folded --fused --checkpointing encoder
# 4. LoRA throughput: a larger micro-batch (images/s = 1000 * batch / step ms).
row lora_batch4 "${TS[@]}" --methods lora --attention sdpa --fused --batch 4
row lora_batch4_folded "${TS[@]}" --methods lora --attention folded --fused --batch 4
# 5. decoder-only: a training step served by the feature cache, and epoch 1 vs epoch 2 of a real run.
row decoder_cached "${TS[@]}" --methods decoder_only --feature-cache auto
row epochs epochs --backbone "$BACKBONE" --device "$DEVICE" --precision "$PRECISION" --images "$EPOCH_IMAGES" \
  --epochs 2 --feature-cache auto,off
fi
if [ "$PART" != 1 ]; then
# 6. Where the steps' time goes: the 15 most expensive kernels of one step each (for the next change).
row profile "${TS[@]}" --methods lora,conv_lora,lst --attention folded --fused --steps 1 --warmup 2 --profile 15
row profile_grouped "${TS[@]}" --methods conv_lora --attention folded --fused --moe-kernel grouped --steps 1 \
  --warmup 2 --profile 15
# 7. Single layers, before and after: Conv-LoRA (interpolate / matmul / grouped, with operator and
#    sync counts) and the attention (sam / sdpa / folded).
LIMIT=240 row layers layers --device "$DEVICE" --precision "$PRECISION" --repeat "${LAYER_REPEAT:-20}" \
  --warmup "${LAYER_WARMUP:-5}"
# 8. torch.compile of LoRA's encoder (compile time in its own column; the first step pays it).
row lora_compile "${TS[@]}" --methods lora --attention folded --fused --compile encoder
# 9. The peak of every other PEFT method at batch 1 with the folded attention (3 steps each).
LIMIT=240 row every_method_folded "${TS[@]}" --methods adapter,bitfit,ssf,vpt,sam_adapter,sam2lora,decoder_only \
  --attention folded --fused --steps 3 --warmup 1
# 10. Conv-LoRA compiled around its routing step (which runs eagerly); last: the lowest priority.
LIMIT=240 row conv_lora_compile "${TS[@]}" --methods conv_lora --attention folded --fused --moe-kernel grouped \
  --compile encoder
fi
echo "done in $SECONDS s" | tee -a "$SUMMARY"
