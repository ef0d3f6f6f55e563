#!/usr/bin/env bash
# Resume the demo model's training run on the CUDA GPUs of this machine for the minutes there are, then export,
# evaluate on the held-out scenes and write the learning curve.
#
#   bash scripts/train_demo_gpu.sh [MINUTES]          # default 50: leaves ~10 min of a 1-hour loan for the rest
#
# It continues the committed run (checkpoints/demo_small/resume.pt + models/demo_small/model.safetensors) with
# config/train_demo_small.yaml: one rank per GPU (global batch = GPUs; the log says what changed), the step
# counter and the sample stream go on. Outputs: runs/demo_small/ (checkpoint.pt, eval_log.csv, model/,
# learning_curve.csv/.png, evaluation.md/.json). Then copy runs/demo_small/model/ to models/demo_small/ and write
# the slim resume state (README, "The demo model") if the evaluation beats the committed one on every metric.
#
# Environment (for a dry run on CPU, e.g. the test): CONFIG, RESUME ("" = a new run), DEVICE (default cuda),
# NPROC (default: the GPUs nvidia-smi lists), OUT (default runs/demo_small), EVAL_SCENES (default 20), EPS3D
# (the eps3d program, default .venv/bin/eps3d).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

MINUTES="${1:-50}"
CONFIG="${CONFIG:-config/train_demo_small.yaml}"
RESUME="${RESUME-checkpoints/demo_small/resume.pt}"
DEVICE="${DEVICE:-cuda}"
OUT="${OUT:-runs/demo_small}"
EVAL_SCENES="${EVAL_SCENES:-20}"
EPS3D="${EPS3D:-.venv/bin/eps3d}"
if [[ -z "${NPROC:-}" ]]; then
    if [[ "$DEVICE" == cuda* ]]; then
        NPROC="$(nvidia-smi -L 2>/dev/null | grep -c '^GPU' || true)"
        [[ "$NPROC" -ge 1 ]] || { echo "train_demo_gpu: no CUDA GPU listed by nvidia-smi (DEVICE=cpu for a dry run)" >&2; exit 2; }
    else
        NPROC=1
    fi
fi

resume=()
if [[ -f "$OUT/checkpoint.pt" ]]; then
    resume=(--resume "$OUT/checkpoint.pt")  # an earlier loan of this script got further: go on from there
elif [[ -n "$RESUME" ]]; then
    resume=(--resume "$RESUME")
fi

echo "train_demo_gpu: $MINUTES min on $NPROC rank(s) ($DEVICE), $CONFIG ${resume[*]}" >&2
"$EPS3D" train --config "$CONFIG" "${resume[@]}" --out-dir "$OUT" --device "$DEVICE" --nproc-per-node "$NPROC" \
    --max-minutes "$MINUTES" --no-progress
"$EPS3D" evaluate "$OUT/model" --scenes "$EVAL_SCENES" --device "$DEVICE" --no-progress \
    --json "$OUT/evaluation.json" --markdown > "$OUT/evaluation.md"
"$EPS3D" learning-curve "$OUT" --out "$OUT/model" --title "$(basename "$OUT") after $MINUTES min on $DEVICE"
echo "train_demo_gpu: done; $OUT/evaluation.md, $OUT/model/learning_curve.png" >&2
