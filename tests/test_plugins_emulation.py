"""The CUDA kernels run on CPU threads (plugins/emu): the unchanged deform_cuda.cu agrees with the CPU
implementation, plain and under AddressSanitizer / ThreadSanitizer, and the emulation demonstrably reports
the bug classes it is there for (planted in probe kernels, and a race planted in the real GEMM)."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from siamattn.plugins import build as library_build
from siamattn.plugins import emulation, library
from siamattn.plugins.build import SOURCE_DIR, PluginBuildError


@pytest.fixture(scope="module")
def lib_dir() -> Path:
    return emulation.build_emulation()


def _sanitizer_usable(result: emulation.EmulationRun) -> emulation.EmulationRun:
    # ThreadSanitizer refuses to start on kernels with a high mmap randomisation (vm.mmap_rnd_bits): that is
    # the machine, not the code under test.
    if "FATAL: ThreadSanitizer" in result.output:
        pytest.skip("ThreadSanitizer cannot run on this kernel: " + result.output.strip().splitlines()[0])
    return result


def _run(lib_dir: Path, program: str, args: list[str], sanitizer: str = "none") -> emulation.EmulationRun:
    try:
        return _sanitizer_usable(emulation.run(lib_dir, program, args, sanitizer))
    except PluginBuildError as err:
        if sanitizer == "none":
            raise
        pytest.skip(str(err))


@pytest.mark.parametrize("sanitizer", emulation.SANITIZERS)
def test_emulated_cuda_kernels_match_cpu_implementation(lib_dir: Path, sanitizer: str) -> None:
    result = _run(lib_dir, "selftest", ["--quick"], sanitizer)
    assert result.ok, result.output
    assert f"impl=cuda-emulation sanitizer={sanitizer}" in result.output
    cases = re.findall(r"^(ok  |FAIL) (conv|roi_pool) ", result.output, re.M)
    # 5 conv shapes + 8 RoI-pool variants (2 shapes x 2 modes x FP32/FP16 rois), in FP32 and FP16 (the GEMM's
    # WMMA path is the FP16 one).
    assert len(cases) == 26 and all(status == "ok  " for status, _ in cases), result.output
    assert len(re.findall(r"^ok   roi_pool \S+ \S+ mmdet_v1 ", result.output, re.M)) == 8, result.output
    assert "ALL OK" in result.output and "WARNING: ThreadSanitizer" not in result.output
    # The tracker's 7x7 map takes the split-K path (partials + reduction kernel) in both dtypes.
    for dtype in ("fp32", "fp16"):
        assert re.search(rf"^ok   conv tracker 7x7 256->256 {dtype} k-splits=(\d+)", result.output, re.M)
        splits = int(re.search(rf"tracker 7x7 256->256 {dtype} k-splits=(\d+)", result.output).group(1))
        assert splits > 1


@pytest.mark.parametrize("forced", [1, 3])
def test_split_k_override_keeps_results(lib_dir: Path, forced: int) -> None:
    before = os.environ.get("SIAMATTN_DEFORM_SPLIT_K")
    with library.split_k_override(forced):  # the library reads it per call, the emulated one here too
        result = _run(lib_dir, "selftest", ["--quick"])
    assert os.environ.get("SIAMATTN_DEFORM_SPLIT_K") == before
    assert result.ok and "ALL OK" in result.output, result.output
    splits = {int(n) for n in re.findall(r"^ok   conv tracker 7x7 256->256 fp\d\d k-splits=(\d+)", result.output, re.M)}
    assert splits == {int(forced)}


@pytest.mark.parametrize("sanitizer", ["none", "address"])
def test_tensorrt_plugins_run_time_path_matches_cpu_implementation(lib_dir: Path, sanitizer: str) -> None:
    if not emulation.has_trt_driver(lib_dir):
        pytest.skip("no TensorRT headers (NvInferRuntime.h, TensorRT >= 10) found: set TensorRT_INCLUDE_DIR")
    result = _run(lib_dir, "trt_driver", [], sanitizer)
    assert result.ok, result.output
    cases = re.findall(r"^(ok  |FAIL) (DeformConv|SiamAttnDeformConv|DeformRoIPool) ", result.output, re.M)
    # 3 DeformConv attribute sets (both plugin names) + 5 DeformRoIPool ones (no mode attribute, mode=0, mode=1
    # twice), FP32 and FP16; every plugin is re-created from its serialised fields (so a mode lost on the way
    # gives mmcv's numbers against the CPU library's mmdet_v1 ones) and must log (not crash) when enqueued
    # before onShapeChange.
    assert len(cases) == 16 and all(status == "ok  " for status, _ in cases), result.output
    assert len(re.findall(r"^ok   DeformRoIPool .* mode=1 fp(16|32) ", result.output, re.M)) == 4, result.output
    assert "logged through TensorRT's logger: 16 " in result.output
    assert re.search(r"^ok   DeformRoIPool's mode attribute: mode 2 refused \(yes\), mode 1 \+ sampling_ratio 0 "
                     r"refused \(yes\)", result.output, re.M), result.output
    # An exception thrown inside a noexcept entry point comes back as its error value with a logged reason.
    assert re.search(r"^ok   guarded entry point: a throwing getWorkspaceSize returned 0 and logged: "
                     r"\[siamattn plugins\] DeformConvPlugin::getWorkspaceSize: exception: ", result.output, re.M), \
        result.output


@pytest.mark.parametrize("sanitizer", ["none", "address"])
def test_emulated_kernels_batch_items_equal_each_item_alone(lib_dir: Path, sanitizer: str) -> None:
    """The batch graphs of several targets (docs/DESIGN.md "Many targets"): DeformConv on 3 items and DeformRoIPool
    on 3 items with 4 interleaved RoIs each (a RoI's first value is its item) match the CPU library, and each item
    (and each RoI) run alone gives the batch's output for it, bit for bit where the summation order is the same."""
    result = _run(lib_dir, "selftest", ["--batch"], sanitizer)
    assert result.ok and "ALL OK" in result.output, result.output
    lines = re.findall(r"^(ok  |FAIL) batch (conv|roi_pool) (.*)$", result.output, re.M)
    # per dtype: 2 conv cases (vs cpu + 3 items alone), 2 pooling modes (vs cpu + 3 items alone + each RoI alone)
    assert len(lines) == 2 * (2 * 4 + 2 * 5) and all(status == "ok  " for status, _, _ in lines), result.output
    vs_cpu = [rest for _, _, rest in lines if " vs cpu " in rest]
    assert len(vs_cpu) == 8 and sum(" mmdet_v1 " in r for r in vs_cpu) == 2
    pools = [rest for _, op, rest in lines if op == "roi_pool" and "alone" in rest]
    assert len(pools) == 16 and all(r.endswith("bit-identical") for r in pools), pools
    convs = [re.search(r"item \d alone \(k-splits (\d+)/(\d+)\) +(.*)$", rest) for _, op, rest in lines
             if op == "conv" and "alone" in rest]
    assert len(convs) == 12 and all(m is not None for m in convs)
    # same split-K (so the same summation order) for the batch and the lone item: bit-identical; split-K itself ran
    assert all(m.group(3) == "bit-identical" for m in convs if m.group(1) == m.group(2))
    assert any(int(m.group(1)) > 1 for m in convs)


def test_tensorrt_plugins_at_a_batch_of_targets_equal_each_target_alone(lib_dir: Path) -> None:
    """The plugins as the batch engines run them: built once for 1..3 targets (the target axis -1 at build time,
    the workspace sized for the profile's max), then enqueued at 3 targets and at each target alone on one
    context; DeformRoIPool with 4 RoIs per target."""
    if not emulation.has_trt_driver(lib_dir):
        pytest.skip("no TensorRT headers (NvInferRuntime.h, TensorRT >= 10) found: set TensorRT_INCLUDE_DIR")
    result = _run(lib_dir, "trt_driver", ["--batch"], "address")
    assert result.ok and "ALL OK" in result.output, result.output
    lines = re.findall(r"^(ok  |FAIL) batch (DeformConv|DeformRoIPool) (.*)$", result.output, re.M)
    # per dtype: DeformConv and 2 DeformRoIPool modes, each vs cpu + 3 targets alone
    assert len(lines) == 2 * 3 * 4 and all(status == "ok  " for status, _, _ in lines), result.output
    alone = [rest for _, _, rest in lines if " alone " in rest]
    assert len(alone) == 18 and all(r.endswith("bit-identical") for r in alone), alone


@pytest.fixture(scope="module")
def v2_lib_dir() -> Path:
    """An emulation build whose TensorRT driver is compiled against the 8.6 headers: the IPluginV2DynamicExt glue
    (what TensorRT 8.5 on JetPack 5 runs; 8.6 stands in for 8.5, see ../shared/tensorrt-headers/README.md)."""
    include = library_build.shared_tensorrt_include("8.6")
    if include is None:
        pytest.skip("no TensorRT 8.6 headers beside the clone (../shared/tensorrt-headers/8.6/include): the "
                    "IPluginV2DynamicExt glue cannot be compiled here")
    return emulation.build_emulation(tensorrt_include=include, jobs=2)


@pytest.mark.parametrize("sanitizer", ["none", "address"])
def test_tensorrt8_plugin_glue_run_time_path_matches_cpu_implementation(v2_lib_dir: Path, sanitizer: str) -> None:
    assert emulation.trt_driver_interface(v2_lib_dir) == "8.6/IPluginV2DynamicExt"
    result = _run(v2_lib_dir, "trt_driver", [], sanitizer)
    assert result.ok, result.output
    assert "interface=IPluginV2DynamicExt" in result.output
    # Every case went through createPlugin, getOutputDataType, getOutputDimensions (compared with the expected
    # shape), supportsFormatCombination (and a refused mixed-type output), configurePlugin, getWorkspaceSize,
    # serialize -> deserializePlugin -> clone -> initialize, enqueue: the same 16 cases as the IPluginV3 glue.
    cases = re.findall(r"^(ok  |FAIL) (DeformConv|SiamAttnDeformConv|DeformRoIPool) ", result.output, re.M)
    assert len(cases) == 16 and all(status == "ok  " for status, _ in cases), result.output
    assert "logged through TensorRT's logger: 16 (one expected per case: enqueue before configurePlugin)" in \
        result.output
    for line in (r"entry points: load-time self-registration put 3 creators in the running registry; "
                 r"getPluginCreators returned 3 and took them back \(registry now holds 0\)",
                 r"guarded entry point: a throwing getWorkspaceSize returned 0 and logged: \[siamattn plugins\] "
                 r"DeformConvPluginV2::getWorkspaceSize: exception: ",
                 r"serialised data: a DeformConv blob given to DeformRoIPool and a truncated one are refused",
                 r"DeformRoIPool's mode attribute: mode 2 refused \(yes\), mode 1 \+ sampling_ratio 0 refused \(yes\)"):
        assert re.search("^ok   " + line, result.output, re.M), result.output
    assert "ALL OK" in result.output


def test_clean_probe_passes_under_every_variant(lib_dir: Path) -> None:
    for sanitizer in emulation.SANITIZERS:
        result = _run(lib_dir, "probe", ["ok"], sanitizer)
        assert result.ok and "0 of 192 outputs wrong" in result.output, result.output
        wmma = _run(lib_dir, "probe", ["wmma"], sanitizer)
        assert wmma.ok and "c[0] = 16" in wmma.output, wmma.output


def test_thread_sanitizer_reports_a_missing_syncthreads(lib_dir: Path) -> None:
    result = _run(lib_dir, "probe", ["race"], "thread")
    assert not result.ok
    assert "WARNING: ThreadSanitizer: data race" in result.output and "neighbour_kernel" in result.output


def test_address_sanitizer_reports_an_out_of_bounds_write(lib_dir: Path) -> None:
    result = _run(lib_dir, "probe", ["overflow"], "address")
    assert not result.ok
    assert "AddressSanitizer: heap-buffer-overflow" in result.output and "neighbour_kernel" in result.output


def test_divergent_syncthreads_is_reported(lib_dir: Path) -> None:
    result = _run(lib_dir, "probe", ["divergent"])
    assert not result.ok
    assert "divergent __syncthreads in block (0,0,0)" in result.output


def test_wmma_alignment_precondition_is_checked(lib_dir: Path) -> None:
    result = _run(lib_dir, "probe", ["wmma-misaligned"])
    assert not result.ok
    assert "wmma::load_matrix_sync precondition violated" in result.output and "not 256-bit aligned" in result.output


@pytest.mark.parametrize("order", ["reverse", "shuffle"])
def test_kernels_do_not_depend_on_block_order(lib_dir: Path, order: str) -> None:
    result = emulation.selftest(lib_dir, block_order=order)
    assert result.ok and "ALL OK" in result.output, result.output


def test_block_order_exposes_blocks_racing_for_one_element(lib_dir: Path) -> None:
    last = {order: emulation.run(lib_dir, "probe", ["block-race"], block_order=order).output
            for order in ("forward", "reverse")}
    assert "out[0] = 7 " in last["forward"] and "out[0] = 0 " in last["reverse"], last


def test_launch_outside_cuda_limits_fails_like_cuda(lib_dir: Path) -> None:
    result = _run(lib_dir, "probe", ["bad-config"])
    assert result.returncode == 3 and "invalid configuration argument" in result.output, result.output


def test_race_planted_in_the_real_gemm_is_caught(tmp_path: Path) -> None:
    # Drop the __syncthreads that ends each K step of the FP32 GEMM: the next step's tile loads then overwrite
    # shared memory other threads are still reading. The real kernel file, one line removed.
    src = tmp_path / "plugins"
    shutil.copytree(SOURCE_DIR, src, ignore=shutil.ignore_patterns("__pycache__", "*.py"))
    cu = src / "src" / "deform_cuda.cu"
    text = cu.read_text()
    kernel = text.index("gemm_f32_simt_kernel(GemmArgs<float> args)")
    step_end = text.index("        __syncthreads();\n    }\n#pragma unroll", kernel)
    cu.write_text(text[:step_end] + text[step_end + len("        __syncthreads();\n"):])
    build = tmp_path / "build"
    configure = ["cmake", "-S", str(src), "-B", str(build), "-DSIAMATTN_BUILD_CUDA=OFF", "-DSIAMATTN_BUILD_TRT=OFF",
                 "-DSIAMATTN_BUILD_EMULATION=ON"]
    subprocess.run(configure, check=True, capture_output=True)
    if "thread" not in (build / "lib" / "siamattn_build.txt").read_text():
        pytest.skip("the compiler cannot link -fsanitize=thread")
    subprocess.run(["cmake", "--build", str(build), "--target", "siamattn_emu_selftest_tsan", "-j", "2"], check=True,
                   capture_output=True)
    result = _sanitizer_usable(emulation.run(build / "lib", "selftest", ["--quick"], "thread"))
    assert not result.ok
    assert "WARNING: ThreadSanitizer: data race" in result.output and "gemm_f32_simt_kernel" in result.output


def test_cli_emulate_with_its_defaults(capsys: pytest.CaptureFixture[str]) -> None:
    """The README's 'siamattn plugins emulate' as typed: plain, AddressSanitizer and ThreadSanitizer runs (a
    sanitizer the compiler or kernel cannot run is skipped and said)."""
    from siamattn.cli import main

    assert main(["plugins", "emulate"]) == 0
    out = capsys.readouterr().out
    assert "all variants passed" in out and out.count("ALL OK") + out.count("skipped") >= 3, out


def test_emulate_cli_skips_a_sanitizer_the_compiler_lacks(monkeypatch: pytest.MonkeyPatch,
                                                          capsys: pytest.CaptureFixture[str]) -> None:
    from siamattn.cli import main

    real = emulation.executable

    def without_tsan(lib_dir: Path, program: str, sanitizer: str = "none") -> Path:
        if sanitizer == "thread":
            raise PluginBuildError("siamattn_emu_selftest_tsan is missing: no -fsanitize=thread")
        return real(lib_dir, program, sanitizer)

    monkeypatch.setattr(emulation, "executable", without_tsan)
    monkeypatch.setattr(emulation, "has_trt_driver", lambda lib_dir: False)
    assert main(["plugins", "emulate"]) == 0
    out = capsys.readouterr().out
    assert "skipped: siamattn_emu_selftest_tsan is missing" in out and out.count("ALL OK") == 2
    assert main(["plugins", "emulate", "--sanitizer", "thread"]) != 0  # asked for explicitly: an error
