#!/usr/bin/env bash
# The one GPU report (docs/PERFORMANCE.md, "To measure on a GPU"): about 5-8 minutes on an H100/H200.
#
#   bash bench/gpu_report.sh [MODEL_DIR]        # writes $OUT (default gpu_report/) and prints a summary
#
# On a machine with an NVIDIA GPU, CUDA's nvcc + compute-sanitizer, CMake and a CUDA build of PyTorch:
#   1. the GPU's name and driver (nvidia-smi);
#   2. the CUDA kernels against torchvision / siamattn.ops on the GPU, FP32 and FP16, and the torch-free
#      self-test under compute-sanitizer memcheck, racecheck and initcheck (python -m siamattn.plugins.gpu_check);
#   3. the kernel benchmark: ours vs torchvision vs a dense cuDNN conv (bench/plugins.py);
#   4. tracker fps of the runtime's torch backend on the GPU (FP16 + CUDA graph) for MODEL_DIR, an export
#      folder made beforehand on any machine (default: the shipped demo model exported here);
#   5. where a TensorRT Python module is importable (tensorrt, or tensorrt_rtx), engines for MODEL_DIR and its
#      fps with the TensorRT backend, the plugin library built for this GPU;
#   6. INT8 beside FP16: an INT8 export (INT8_MODEL=DIR, else made here from the demo model on the demo clip),
#      its engines (strongly typed Q/DQ), its fps, and bench/graphs.py per graph (FP16 graph vs INT8 graph);
#   7. what the FP16 large_weights island costs on the GPU (it keeps the demo model's large-weight convs and
#      depthwise convs over 4 FP32; docs/PERFORMANCE.md): the search engine with and without it.
# Every step has its own time limit and the report goes on after a failure; the exit status is that of the
# first failed step (0: all passed). Nothing here needs the network.
#
# The workplace's device tool, for example: export the demo here with
#   siamattn export --checkpoint assets/demo/model.pt --out .gpu/demo --engine none
# (".gpu/" listed in .git/info/exclude), then run "bash bench/gpu_report.sh .gpu/demo" with carry [".gpu"].
set -u
OUT=${OUT:-gpu_report}
MODEL=${1:-}
PY=${PYTHON:-python3}
mkdir -p "$OUT"
status=0
step() {  # step NAME SECONDS CMD...: run with a time limit, log to $OUT/NAME.log, remember the first failure
    local name=$1 limit=$2; shift 2
    echo "==> $name (limit ${limit}s)"
    local t0=$SECONDS
    timeout "$limit" "$@" >"$OUT/$name.log" 2>&1
    local rc=$?
    tail -n 25 "$OUT/$name.log"
    echo "<== $name: exit $rc after $((SECONDS - t0)) s"
    if [ "$rc" -ne 0 ] && [ "$status" -eq 0 ]; then status=$rc; fi
    return "$rc"
}

# siamattn itself without installing anything (torch, onnx, opencv are the machine's own): the package layout
# of pyproject.toml's package-dir as links to this checkout's folders.
if ! "$PY" -c "import siamattn" 2>/dev/null; then
    site=$(mktemp -d)/site
    mkdir -p "$site/siamattn"
    ln -s "$PWD"/siamattn/* "$site/siamattn/"
    for stage in configs training export plugins runtime; do ln -s "$PWD/$stage" "$site/siamattn/$stage"; done
    export PYTHONPATH=$site${PYTHONPATH:+:$PYTHONPATH}
    "$PY" -c "import siamattn.cli" || { echo "siamattn does not import here (see above)"; exit 3; }
fi

nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv | tee "$OUT/gpu.csv"
step gpu_check 300 "$PY" -m siamattn.plugins.gpu_check --json "$OUT/gpu_check.json"
step plugins_bench 150 "$PY" bench/plugins.py --runs 100 --out "$OUT/plugins.json"

if [ -z "$MODEL" ]; then
    MODEL=/tmp/gpu_report_demo
    step export_demo 150 "$PY" -m siamattn.cli export --checkpoint assets/demo/model.pt --out "$MODEL" --engine none \
        --overwrite  # its own scratch folder: replace an earlier report's export
fi
# INT8 beside FP16 (issue 20): an INT8 export of the same model (calibrated here on the demo clip unless INT8_MODEL
# names a prepared one), its engines built strongly typed from the Q/DQ graphs, and its end-to-end fps.
if [ -z "${INT8_MODEL:-}" ]; then
    INT8_MODEL=/tmp/gpu_report_demo_int8
    step export_demo_int8 300 "$PY" -m siamattn.cli export --checkpoint assets/demo/model.pt --precision int8 \
        --out "$INT8_MODEL" --engine none
fi
step runtime_torch_gpu 120 "$PY" bench/runtime.py --model "$MODEL" --backends torch --out "$OUT/runtime_torch_gpu.json"

if "$PY" -c "import tensorrt" 2>/dev/null || "$PY" -c "import tensorrt_rtx" 2>/dev/null; then
    step trt_plugins 150 "$PY" -m siamattn.cli plugins build \
        && step trt_engines 240 "$PY" -m siamattn.cli build-engines --model "$MODEL" \
        && step runtime_trt 120 "$PY" bench/runtime.py --model "$MODEL" --backends tensorrt,torch \
            --out "$OUT/runtime_trt.json"
    step trt_engines_int8 240 "$PY" -m siamattn.cli build-engines --model "$INT8_MODEL" \
        && step runtime_trt_int8 120 "$PY" bench/runtime.py --model "$INT8_MODEL" --backends tensorrt \
            --out "$OUT/runtime_trt_int8.json" \
        && step graphs_int8 300 "$PY" bench/graphs.py --model "$MODEL" --int8 "$INT8_MODEL" \
            --backends onnxruntime,tensorrt --out "$OUT/graphs_int8.json"
    NOLW=/tmp/gpu_report_demo_fp16_nolw  # every FP32 island but large_weights
    KEEP=$("$PY" -c "from siamattn.export_choices import FP32_ISLANDS as I; print(','.join(i for i in I if i != 'large_weights'))")
    step export_demo_nolw 150 "$PY" -m siamattn.cli export --checkpoint assets/demo/model.pt --out "$NOLW" \
        --engine none --overwrite --keep-fp32 "$KEEP" \
        && step trt_engines_nolw 240 "$PY" -m siamattn.cli build-engines --model "$NOLW" \
        && step graphs_search_islands 120 "$PY" bench/graphs.py --model "$MODEL" --graphs search \
            --backends tensorrt --out "$OUT/graphs_search_fp16.json" \
        && step graphs_search_nolw 120 "$PY" bench/graphs.py --model "$NOLW" --graphs search \
            --backends tensorrt --out "$OUT/graphs_search_fp16_nolw.json"
else
    echo "==> TensorRT: no tensorrt / tensorrt_rtx module here; engine steps skipped" | tee "$OUT/trt_skipped.log"
fi
echo "report in $OUT/ (exit $status)"
exit "$status"
