// CUDA-on-CPU emulation, for tests only. Just enough of the CUDA language and runtime to compile this
// project's kernels (src/deform_cuda.cu) unchanged with a host compiler and run them on CPU threads, so a
// machine without a GPU executes their real indexing, tiling, shared-memory staging and __syncthreads
// structure, under AddressSanitizer (a memcheck stand-in) and ThreadSanitizer (a racecheck stand-in).
//
// Execution model: the blocks of a launch run one after another; the threads of a block are real OS threads
// that meet at a barrier for every __syncthreads and again at the end of each block. Because only one block
// is alive at a time, function-level statics serve as its shared memory (`__shared__` -> `static`).
// A barrier reached by some threads of a block at __syncthreads and by others at the block's end (divergent
// __syncthreads, undefined behaviour on a GPU) aborts with a message. Launch configurations outside CUDA's
// limits fail like a real launch does (cudaGetLastError). Not a general emulator: no streams, no atomics,
// no warp shuffles, no dynamic shared memory.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <tuple>
#include <utility>

#define __global__
#define __device__
#define __host__
#define __forceinline__ inline
#define __launch_bounds__(...)
#define __shared__ static
#define __align__(n) __attribute__((aligned(n)))

struct dim3 {
    unsigned x, y, z;
    constexpr dim3(unsigned x_ = 1, unsigned y_ = 1, unsigned z_ = 1) : x(x_), y(y_), z(z_) {}
};

extern thread_local dim3 threadIdx, blockIdx, blockDim, gridDim;

enum cudaError_t {
    cudaSuccess = 0,
    cudaErrorInvalidValue = 1,
    cudaErrorMemoryAllocation = 2,
    cudaErrorInvalidConfiguration = 9,
};
enum cudaMemcpyKind { cudaMemcpyHostToHost, cudaMemcpyHostToDevice, cudaMemcpyDeviceToHost, cudaMemcpyDeviceToDevice };
using cudaStream_t = struct cuda_emu_stream*;

struct cudaDeviceProp {
    char name[256];
    int major, minor;
};

cudaError_t cudaGetLastError();
const char* cudaGetErrorString(cudaError_t err);
cudaError_t cudaMalloc(void** ptr, size_t bytes);
cudaError_t cudaFree(void* ptr);
cudaError_t cudaMemcpy(void* dst, const void* src, size_t bytes, cudaMemcpyKind kind);
cudaError_t cudaDeviceSynchronize();
cudaError_t cudaGetDeviceCount(int* count);
cudaError_t cudaGetDeviceProperties(cudaDeviceProp* prop, int device);

template <typename T>
inline T __ldg(const T* p) {
    return *p;
}

namespace cuda_emu {

// Runs body() once per thread of every block of the launch; returns false (and sets the last error) when the
// configuration is one CUDA would reject.
template <typename F>
bool launch(dim3 grid, dim3 block, const F& body);
bool launch_erased(dim3 grid, dim3 block, void (*trampoline)(const void*), const void* body);
void sync_threads();
unsigned lane_id();  // threadIdx's linear index within its warp of 32

template <typename F>
bool launch(dim3 grid, dim3 block, const F& body) {
    return launch_erased(grid, block, [](const void* f) { (*static_cast<const F*>(f))(); }, &body);
}

// SIAMATTN_LAUNCH(grid, block, stream, kernel)(args...): the arguments are copied once, as a launch copies them
// into parameter space, and every emulated thread calls the kernel with them.
template <typename... P>
struct Launcher {
    dim3 grid, block;
    void (*kernel)(P...);
    template <typename... A>
    void operator()(A&&... args) const {
        const std::tuple<P...> params(std::forward<A>(args)...);
        launch(grid, block, [&] { std::apply(kernel, params); });
    }
};

template <typename... P>
Launcher<P...> make_launcher(dim3 grid, dim3 block, void (*kernel)(P...)) {
    return Launcher<P...>{grid, block, kernel};
}

}  // namespace cuda_emu

inline void __syncthreads() { cuda_emu::sync_threads(); }

#define SIAMATTN_LAUNCH(grid, block, stream, ...) \
    (static_cast<void>(stream), ::cuda_emu::make_launcher(dim3(grid), dim3(block), __VA_ARGS__))
