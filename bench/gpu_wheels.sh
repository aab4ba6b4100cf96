#!/usr/bin/env bash
# TensorRT-RTX for the GPU report on a machine without network (the workplace's device tool; any lent GPU box).
# Its libs wheel (95 MB) is larger than one device call may carry (64 MiB), so it travels in two halves:
#
#   bash bench/gpu_wheels.sh pack [PY_TAGS]   # here: download the wheels (bindings for each Python tag, default
#                                              # "cp310 cp311 cp312 cp313"), split them into .gpu/wheels1, .gpu/wheels2
#   bash bench/gpu_wheels.sh stash 1          # device call 1 (carry [".gpu/wheels1"]): keep half 1 on that machine
#   bash bench/gpu_wheels.sh install 2        # device call 2 (carry [".gpu/wheels2"]), right after (the machine goes
#                                              # back when idle): reassemble, check sha256, pip install --no-deps
#
# then `bash bench/gpu_report.sh` finds `tensorrt_rtx` and runs its engine steps. ".gpu/" is for the device only:
# list it in .git/info/exclude (the tool carries ignored paths only when named).
set -euo pipefail
cmd=${1:?usage: gpu_wheels.sh pack [PY_TAGS] | stash 1 | install 2}
VERSION=${TRT_RTX_VERSION:-1.7.1.116}
HERE=.gpu
STASH=${GPU_WHEEL_STASH:-/tmp/siamattn-gpu-wheels}
PY=${PYTHON:-python3}
case "$cmd" in
pack)
    tags=${2:-cp310 cp311 cp312 cp313}
    work=$(mktemp -d)
    "$PY" -m pip download -q --no-deps -d "$work" "tensorrt-rtx-cu13-libs==$VERSION"
    for tag in $tags; do
        "$PY" -m pip download -q --no-deps --only-binary=:all: --python-version "${tag#cp}" -d "$work" \
            "tensorrt-rtx-cu13-bindings==$VERSION" || echo "note: no bindings wheel for $tag"
    done
    rm -rf "$HERE/wheels1" "$HERE/wheels2"
    mkdir -p "$HERE/wheels1" "$HERE/wheels2"
    libs=$(ls "$work"/tensorrt_rtx_cu13_libs-*.whl)
    (cd "$work" && sha256sum "$(basename "$libs")") > "$HERE/wheels1/SHA256SUMS"
    half=$(( ($(stat -c %s "$libs") + 1) / 2 ))
    split -b "$half" -d -a 1 "$libs" "$HERE/wheels1/$(basename "$libs").part"
    mv "$HERE/wheels1/$(basename "$libs").part1" "$HERE/wheels2/"
    mv "$work"/tensorrt_rtx_cu13_bindings-*.whl "$HERE/wheels2/"
    rm -rf "$work"
    du -sh "$HERE/wheels1" "$HERE/wheels2"
    ;;
stash)
    mkdir -p "$STASH"
    cp "$HERE"/wheels1/* "$STASH/"
    ls -la "$STASH"
    ;;
install)
    cp "$HERE"/wheels2/* "$STASH/"
    cd "$STASH"
    for first in *.whl.part0; do cat "$first" "${first%.part0}.part1" > "${first%.part0}"; done
    sha256sum -c SHA256SUMS
    "$PY" -m pip install -q --no-deps --no-index tensorrt_rtx_cu13_libs-*.whl \
        "$(ls tensorrt_rtx_cu13_bindings-*.whl | grep "$("$PY" -c 'import sys; print(f"cp{sys.version_info[0]}{sys.version_info[1]}")')")"
    "$PY" -c "import tensorrt_rtx_bindings as t; print('TensorRT-RTX', t.__version__)" 2>/dev/null \
        || "$PY" -c "import tensorrt_rtx as t; print('TensorRT-RTX', t.__version__)"
    ;;
*) echo "usage: gpu_wheels.sh pack [PY_TAGS] | stash 1 | install 2" >&2; exit 2 ;;
esac
