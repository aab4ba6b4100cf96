// Probes for the CUDA-on-CPU emulation: small kernels with one planted defect each, so the tests can show
// that the emulation (and the sanitizers it runs under) reports that kind of bug in a kernel. `ok` is the same
// kernel without a defect. Usage: siamattn_emu_probe ok|race|overflow|divergent|wmma|wmma-misaligned|block-race|
// bad-config
#include <cuda_fp16.h>
#include <cuda_runtime.h>
#include <mma.h>

#include <cstdio>
#include <cstring>
#include <vector>

namespace {

constexpr int kThreads = 64;

// Each thread stages one value in shared memory and reads its neighbour's: needs the __syncthreads.
__global__ void neighbour_kernel(const float* in, float* out, int n, int sync, int overflow) {
    __shared__ float tile[kThreads];
    const int i = blockIdx.x * blockDim.x + threadIdx.x;
    tile[threadIdx.x] = i < n ? in[i] : 0.0f;
    if (sync) __syncthreads();
    const float v = tile[(threadIdx.x + 1) % kThreads];
    if (i < n) out[i + overflow] = v;  // overflow = 1: the last thread writes one past the end
}

// Every block writes the same element: the value left behind depends on which block runs last.
__global__ void last_block_kernel(float* out) {
    if (threadIdx.x == 0) out[0] = (float)blockIdx.x;
}

__global__ void divergent_kernel(float* out) {
    if (threadIdx.x < 16) __syncthreads();
    out[threadIdx.x] = 1.0f;
}

__global__ void wmma_kernel(float* out, int shift) {
    using namespace nvcuda;
    __shared__ __align__(32) __half a[16 * 16 + 16];
    __shared__ __align__(32) float c[16 * 16];
    for (int e = threadIdx.x; e < 16 * 16 + 16; e += blockDim.x) a[e] = __float2half_rn(1.0f);
    __syncthreads();
    wmma::fragment<wmma::matrix_a, 16, 16, 16, __half, wmma::row_major> fa;
    wmma::fragment<wmma::matrix_b, 16, 16, 16, __half, wmma::row_major> fb;
    wmma::fragment<wmma::accumulator, 16, 16, 16, float> acc;
    wmma::fill_fragment(acc, 0.0f);
    wmma::load_matrix_sync(fa, a + shift, 16);
    wmma::load_matrix_sync(fb, a, 16);
    wmma::mma_sync(acc, fa, fb, acc);
    wmma::store_matrix_sync(c, acc, 16, wmma::mem_row_major);
    __syncthreads();
    for (int e = threadIdx.x; e < 16 * 16; e += blockDim.x) out[e] = c[e];
}

int run_neighbour(int sync, int overflow) {
    const int n = 3 * kThreads;
    std::vector<float> host(n);
    for (int i = 0; i < n; ++i) host[i] = (float)i;
    float *in = nullptr, *out = nullptr;
    cudaMalloc(reinterpret_cast<void**>(&in), n * sizeof(float));
    cudaMalloc(reinterpret_cast<void**>(&out), n * sizeof(float));
    cudaMemcpy(in, host.data(), n * sizeof(float), cudaMemcpyHostToDevice);
    SIAMATTN_LAUNCH(n / kThreads, kThreads, nullptr, neighbour_kernel)(in, out, n, sync, overflow);
    std::vector<float> got(n);
    cudaMemcpy(got.data(), out, n * sizeof(float), cudaMemcpyDeviceToHost);
    int wrong = 0;
    for (int i = 0; i < n; ++i) {
        const int block = i / kThreads, lane = i % kThreads;
        wrong += got[i] != host[block * kThreads + (lane + 1) % kThreads];
    }
    cudaFree(in);
    cudaFree(out);
    std::printf("neighbour kernel: %d of %d outputs wrong\n", wrong, n);
    return wrong == 0 ? 0 : 1;
}

}  // namespace

int main(int argc, char** argv) {
    const char* probe = argc > 1 ? argv[1] : "ok";
    if (!std::strcmp(probe, "ok")) return run_neighbour(1, 0);
    if (!std::strcmp(probe, "race")) return run_neighbour(0, 0);
    if (!std::strcmp(probe, "overflow")) return run_neighbour(1, 1);
    float* out = nullptr;
    cudaMalloc(reinterpret_cast<void**>(&out), 1024 * sizeof(float));
    int status = 0;
    if (!std::strcmp(probe, "divergent")) {
        SIAMATTN_LAUNCH(1, 32, nullptr, divergent_kernel)(out);
    } else if (!std::strcmp(probe, "wmma") || !std::strcmp(probe, "wmma-misaligned")) {
        SIAMATTN_LAUNCH(1, 32, nullptr, wmma_kernel)(out, probe[4] ? 8 : 0);  // 8 halves = 16 bytes
        float c0 = 0.0f;
        cudaMemcpy(&c0, out, sizeof(float), cudaMemcpyDeviceToHost);
        std::printf("wmma: c[0] = %g (expected 16)\n", c0);
        status = c0 == 16.0f ? 0 : 1;
    } else if (!std::strcmp(probe, "block-race")) {
        SIAMATTN_LAUNCH(8, 32, nullptr, last_block_kernel)(out);
        float last = -1.0f;
        cudaMemcpy(&last, out, sizeof(float), cudaMemcpyDeviceToHost);
        std::printf("block-race: out[0] = %g (written by the block that ran last)\n", last);
    } else if (!std::strcmp(probe, "bad-config")) {
        SIAMATTN_LAUNCH(1, 2048, nullptr, divergent_kernel)(out);
        const cudaError_t err = cudaGetLastError();
        std::printf("launch with 2048 threads per block: %s\n", cudaGetErrorString(err));
        status = err == cudaErrorInvalidConfiguration ? 3 : 0;
    } else {
        std::fprintf(stderr, "unknown probe '%s'\n", probe);
        status = 2;
    }
    cudaFree(out);
    return status;
}
