#!/usr/bin/env bash
# One GPU loan: issue 20's measurements in its priority order, each result written as it finishes.
#
#   a  LoRA (checkpointing every layer and checkpoint_layers) vs the plain SDPA loop, TorchTrainer overhead
#   b  padding-free packing (flex attention's document mask) on SFT-like varied lengths
#   c  QLoRA NF4 batch sweep under 12 GiB
#   d  GPU serving: the Ray Serve generator vs a plain transformers generate loop, 1/8/32/128 clients
#   e  full fine-tuning, DeepSpeed ZeRO-3, Llama-3.2-3B shapes
#   f  de-identification notes/s with the tagger on the GPU
#
# Here (no GPU), once:   benchmarks/gpu_loan.sh --prepare     (wheels into .whl/ via ../shared/tools/device-wheels)
# There, with carry [".whl"] (a run's command is cut at 600 s; a 15-minute loan holds ~2 of them):
#   benchmarks/gpu_loan.sh --items a,b,c --budget-s 540      then, while the machine is warm,
#   benchmarks/gpu_loan.sh --items d,e,f --budget-s <left>   [--steps 8] [--workdir /tmp/ct-loan]
# Check the script anywhere:  benchmarks/gpu_loan.sh --dry-run   (prints the plan)
#                             benchmarks/gpu_loan.sh --smoke     (every item's CPU smoke path)
#
# Each item runs in its own process under `timeout`, capped by what is left of --budget-s (keep it
# under the run's 600 s limit, minus the wheel install), and writes $OUT/<item>-<name>.json (the
# training benchmark rewrites it after every stage, so a timed-out item keeps what it finished).
# $OUT/gpu_loan.json records per item: rc, seconds, timed_out, skipped (no budget left); every
# item's output goes to $OUT/gpu_loan.log. Eight files at most: what a loan brings back.
set -uo pipefail
cd "$(dirname "$0")/.."

items="a,b,c,d,e,f"
budget=540
steps=8
workdir=/tmp/ct-loan
dry=0
smoke=0
prepare=0
while [ $# -gt 0 ]; do
  case "$1" in
    --items) items="$2"; shift 2 ;;
    --budget-s) budget="$2"; shift 2 ;;
    --steps) steps="$2"; shift 2 ;;
    --workdir) workdir="$2"; shift 2 ;;
    --dry-run) dry=1; shift ;;
    --smoke) smoke=1; shift ;;
    --prepare) prepare=1; shift ;;
    -h|--help) awk 'NR > 1 && /^#/ { print; next } NR > 1 { exit }' "$0"; exit 0 ;;
    *) echo "gpu_loan.sh: unknown argument '$1' (see --help)" >&2; exit 2 ;;
  esac
done
case "$budget$steps" in *[!0-9]*) echo "gpu_loan.sh: --budget-s and --steps take whole numbers" >&2; exit 2 ;; esac
for it in ${items//,/ }; do
  case "$it" in a|b|c|d|e|f) ;; *) echo "gpu_loan.sh: --items: unknown item '$it' (a-f)" >&2; exit 2 ;; esac
done

if [ "$prepare" = 1 ]; then
  # serving's HTTP stack and the OpenAI client are not in the GPU image (KINDS.md lists what is)
  exec ../shared/tools/device-wheels fastapi starlette uvicorn openai distro jiter sniffio
fi

OUT="${OUT:-$PWD/.loan-out}"
mkdir -p "$OUT" "$workdir"
export PYTHONPATH="$PWD/platform${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1 RAY_USAGE_STATS_ENABLED=0 \
       HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 TOKENIZERS_PARALLELISM=false CLINITUNE_HOME="$workdir/home"
if [ "$dry" = 0 ] && [ "$smoke" = 0 ] && [ -d .whl ] && ls .whl/*.whl >/dev/null 2>&1; then
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl \
    || { echo "wheel install failed" >&2; exit 1; }
  export PYTHONPATH="/tmp/site:$PYTHONPATH"
  if ls .whl/deepspeed-*.tar.gz >/dev/null 2>&1; then
    python3 -m pip install -q --no-index --no-deps --no-build-isolation --target /tmp/site .whl/deepspeed-*.tar.gz \
      || echo "deepspeed did not install: item e will record the error" >&2
  fi
fi
py=python3
if [ "$smoke" = 1 ] && [ -x .venv/bin/python ]; then py=.venv/bin/python; fi
[ "$smoke" = 1 ] && [ -n "${CLINITUNE_PYTHON:-}" ] && py="$CLINITUNE_PYTHON"

gpu="--gpu"; [ "$smoke" = 1 ] && gpu="--gpu --smoke"
# item -> name, its own time cap (s), its command
declare -A name cap cmd
name[a]=lora;    cap[a]=200; cmd[a]="$py benchmarks/train_throughput.py $gpu --stage lora --steps $steps --workdir $workdir/train --out $OUT/a-lora.json"
name[b]=packing; cap[b]=150; cmd[b]="$py benchmarks/train_throughput.py $gpu --stage packing --steps $steps --workdir $workdir/train --out $OUT/b-packing.json"
name[c]=qlora;   cap[c]=150; cmd[c]="$py benchmarks/train_throughput.py $gpu --stage qlora --steps $steps --workdir $workdir/train --out $OUT/c-qlora.json"
if [ "$smoke" = 1 ]; then
  name[d]=serving; cap[d]=240; cmd[d]="$py benchmarks/serve_load.py --levels 1 8 --per-client 1 --max-tokens 8 --skip-retrieval --workdir $workdir/serve --out $OUT/d-serving.json"
  name[f]=deid;    cap[f]=240; cmd[f]="$py benchmarks/deid_accuracy.py --folds 0 --synth-n 20 --speed-notes 0 --no-presidio --threads 2 > $OUT/f-deid.json"
else
  name[d]=serving; cap[d]=180; cmd[d]="$py benchmarks/serve_load.py --gpu --model random-llama-1b --levels 1 8 32 128 --per-client 2 --max-tokens 64 --batch 128 --skip-retrieval --workdir $workdir/serve --out $OUT/d-serving.json"
  name[f]=deid;    cap[f]=90;  cmd[f]="$py benchmarks/deid_accuracy.py --folds 0 --synth-n 300 --speed-notes 0 --no-presidio --threads 16 > $OUT/f-deid.json"
fi
name[e]=full;    cap[e]=200; cmd[e]="$py benchmarks/train_throughput.py $gpu --stage full --steps $steps --workdir $workdir/train --out $OUT/e-full.json"

start=$(date +%s)
summary="$OUT/gpu_loan.json"
log="$OUT/gpu_loan.log"
records=""
planned=0  # --dry-run: the seconds the plan has used so far
for it in ${items//,/ }; do
  left=$(( budget - ($(date +%s) - start) - planned ))
  limit=$(( cap[$it] < left ? cap[$it] : left ))
  rec=""
  if [ "$limit" -lt 30 ]; then
    echo "[loan] $it ${name[$it]}: skipped, ${left}s of the budget left"
    rec="\"skipped\": true, \"budget_left_s\": $left"
  elif [ "$dry" = 1 ]; then
    echo "[loan] $it ${name[$it]}: up to ${limit}s: ${cmd[$it]}"
    rec="\"planned_s\": $limit"
    planned=$(( planned + limit ))
  else
    echo "[loan] $it ${name[$it]}: up to ${limit}s"
    t0=$(date +%s)
    echo "===== $it ${name[$it]}: ${cmd[$it]}" >> "$log"
    timeout -k 10 "$limit" bash -c "${cmd[$it]}" >> "$log" 2>&1
    rc=$?
    secs=$(( $(date +%s) - t0 ))
    timed_out=false; { [ "$rc" = 124 ] || [ "$rc" = 137 ]; } && timed_out=true
    echo "[loan] $it ${name[$it]}: rc=$rc in ${secs}s"; tail -n 3 "$log"
    rec="\"rc\": $rc, \"seconds\": $secs, \"timed_out\": $timed_out, \"limit_s\": $limit"
  fi
  records="${records:+$records,
}  \"$it\": {\"name\": \"${name[$it]}\", $rec}"
  printf '{\n%s\n}\n' "$records" > "$summary"  # rewritten after every item: a killed run keeps the rest
done
[ "$dry" = 1 ] || { command -v nvidia-smi >/dev/null && nvidia-smi >> "$log" 2>&1; true; }
cat "$summary"
