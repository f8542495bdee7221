#!/usr/bin/env bash
# One prepared run of the GPU measurements of issue 14, for a lent machine with a short budget
# (about 8 minutes of commands). Run from the repository root on the GPU machine; every result
# goes to $OUT (default: ./gpu-results), one file per step, and a step that fails does not stop
# the others.
#
#   OUT=/some/dir bash benchmarks/gpu_session.sh            # the real run (device cuda)
#   DEVICE=cpu QUICK=1 bash benchmarks/gpu_session.sh       # check the script itself on a CPU
#
# Steps: the GPU tests; every task's steps/s at 128^2-1024^2 (bench_gpu.py, 10 s each); a 1024^2
# photo denoised in 30 s against NLM and BM3D (scaling.py; BM3D only where the package is
# installed); the frames of a stack one by one vs side by side (bench_frames.py).
set -uo pipefail
cd "$(dirname "$0")/.."
OUT="${OUT:-gpu-results}"
DEVICE="${DEVICE:-cuda}"
PY="${PYTHON:-python3}"
mkdir -p "$OUT"
export PYTHONPATH="$PWD/src${PYTHONPATH:+:$PYTHONPATH}" OMP_WAIT_POLICY=PASSIVE
if [ -n "${QUICK:-}" ]; then
  SECONDS_EACH=2 SIZES=64 BIG=128 BUDGET=5 FRAME_SIZE=64 FRAME_STEPS=5
else
  SECONDS_EACH=10 SIZES=128,256,512,1024 BIG=1024 BUDGET=30 FRAME_SIZE=256 FRAME_STEPS=300
fi

step() {  # name, command...: run one step, keep its output and exit status
  local name=$1
  shift
  echo "== $name: $*" | tee "$OUT/$name.txt"
  local start=$SECONDS
  "$@" >>"$OUT/$name.txt" 2>&1
  echo "== $name: exit $? after $((SECONDS - start)) s" | tee -a "$OUT/$name.txt"
}

{ date -u; nvidia-smi 2>/dev/null | head -15; "$PY" -c 'import torch; print(torch.__version__, torch.cuda.is_available())'; } >"$OUT/machine.txt" 2>&1
if [ "$DEVICE" = cuda ]; then
  step gpu_tests "$PY" -m pytest -q -W ignore tests/test_gpu.py
fi
step steps_per_second "$PY" benchmarks/bench_gpu.py --seconds "$SECONDS_EACH" --device "$DEVICE" --sizes "$SIZES"
bm3d_flag=""
"$PY" -c 'import bm3d' 2>/dev/null || bm3d_flag="--no-bm3d"
step denoise_big "$PY" benchmarks/scaling.py --sizes "$BIG" --tasks denoise --images astronaut \
  --budgets "$BUDGET" --no-oracle $bm3d_flag --set device="$DEVICE" --json "$OUT/denoise_big.json"
step frames "$PY" benchmarks/bench_frames.py --device "$DEVICE" --size "$FRAME_SIZE" --frames 4 \
  --steps "$FRAME_STEPS" --repeats 1
echo "results in $OUT"
