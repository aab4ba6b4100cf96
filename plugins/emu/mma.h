// nvcuda::wmma for the CUDA-on-CPU emulation (see cuda_runtime.h): 16x16x16 fragments, row/column-major
// loads, FP32 accumulation. A fragment belongs to a warp; here lane 0 holds and computes the warp's fragment
// and the other lanes skip the work, which keeps the emulation fast. The documented preconditions are checked
// for every lane: 256-bit aligned pointers, and a leading dimension that is a multiple of 16 bytes.
#pragma once

#include <cstdio>
#include <cstdlib>
#include <type_traits>

#include "cuda_fp16.h"
#include "cuda_runtime.h"

namespace nvcuda {
namespace wmma {

struct matrix_a {};
struct matrix_b {};
struct accumulator {};
struct row_major {};
struct col_major {};
enum layout_t { mem_row_major, mem_col_major };

template <typename Use, int M, int N, int K, typename T, typename Layout = void>
struct fragment {
    static constexpr int rows = std::is_same<Use, matrix_b>::value ? K : M;
    static constexpr int cols = std::is_same<Use, matrix_a>::value ? K : N;
    float x[rows * cols];
};

namespace detail {

inline float to_float(float v) { return v; }
inline float to_float(__half v) { return __half2float(v); }

template <typename T>
void check_operand(const char* what, const T* ptr, unsigned ldm) {
    const bool aligned = reinterpret_cast<uintptr_t>(ptr) % 32 == 0;
    const bool ldm_ok = (ldm * sizeof(T)) % 16 == 0;
    if (!aligned || !ldm_ok) {
        std::fprintf(stderr,
                     "cuda_emu: wmma::%s precondition violated (block %u,%u,%u thread %u): pointer %p is%s 256-bit "
                     "aligned, ldm %u is%s a multiple of 16 bytes\n",
                     what, blockIdx.x, blockIdx.y, blockIdx.z, threadIdx.x, static_cast<const void*>(ptr),
                     aligned ? "" : " not", ldm, ldm_ok ? "" : " not");
        std::abort();
    }
}

}  // namespace detail

template <typename Use, int M, int N, int K, typename T, typename L>
void fill_fragment(fragment<Use, M, N, K, T, L>& f, float value) {
    if (cuda_emu::lane_id() != 0) return;
    for (float& v : f.x) v = value;
}

template <typename Use, int M, int N, int K, typename T, typename L, typename P>
void load_matrix_sync(fragment<Use, M, N, K, T, L>& f, const P* ptr, unsigned ldm) {
    static_assert(std::is_same<P, T>::value, "wmma::load_matrix_sync: pointer type differs from the fragment's");
    detail::check_operand("load_matrix_sync", ptr, ldm);
    if (cuda_emu::lane_id() != 0) return;
    using Frag = fragment<Use, M, N, K, T, L>;
    constexpr bool col = std::is_same<L, col_major>::value;
    for (int r = 0; r < Frag::rows; ++r)
        for (int c = 0; c < Frag::cols; ++c)
            f.x[r * Frag::cols + c] = detail::to_float(col ? ptr[(size_t)c * ldm + r] : ptr[(size_t)r * ldm + c]);
}

template <int M, int N, int K, typename TA, typename LA, typename TB, typename LB>
void mma_sync(fragment<accumulator, M, N, K, float>& d, const fragment<matrix_a, M, N, K, TA, LA>& a,
              const fragment<matrix_b, M, N, K, TB, LB>& b, const fragment<accumulator, M, N, K, float>& c) {
    if (cuda_emu::lane_id() != 0) return;
    float out[M * N];
    for (int i = 0; i < M; ++i)
        for (int j = 0; j < N; ++j) {
            float acc = c.x[i * N + j];
            for (int k = 0; k < K; ++k) acc += a.x[i * K + k] * b.x[k * N + j];
            out[i * N + j] = acc;
        }
    for (int e = 0; e < M * N; ++e) d.x[e] = out[e];
}

template <int M, int N, int K>
void store_matrix_sync(float* ptr, const fragment<accumulator, M, N, K, float>& f, unsigned ldm, layout_t layout) {
    detail::check_operand("store_matrix_sync", ptr, ldm);
    if (cuda_emu::lane_id() != 0) return;
    for (int r = 0; r < M; ++r)
        for (int c = 0; c < N; ++c)
            (layout == mem_row_major ? ptr[(size_t)r * ldm + c] : ptr[(size_t)c * ldm + r]) = f.x[r * N + c];
}

}  // namespace wmma
}  // namespace nvcuda
