// Runtime of the CUDA-on-CPU emulation (see cuda_runtime.h): launches, __syncthreads, memory, errors.
#include <stdlib.h>

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <random>
#include <thread>
#include <vector>

#include "cuda_runtime.h"

thread_local dim3 threadIdx, blockIdx, blockDim, gridDim;

namespace {

std::atomic<int> g_last_error{cudaSuccess};

void set_error(cudaError_t err) { g_last_error.store(err); }

// All threads of a block meet here at every __syncthreads (site = its call site) and at the end of the block
// (site = nullptr). Arrivals of one round from different sites mean divergent __syncthreads.
class BlockBarrier {
   public:
    explicit BlockBarrier(unsigned threads) : threads_(threads) {}

    void wait(const void* site, unsigned thread) {
        std::unique_lock<std::mutex> lock(mutex_);
        if (arrived_ == 0) {
            site_ = site;
            first_thread_ = thread;
        } else if (site != site_) {
            std::fprintf(stderr,
                         "cuda_emu: divergent __syncthreads in block (%u,%u,%u): thread %u is at %s while thread %u "
                         "is at %s\n",
                         blockIdx.x, blockIdx.y, blockIdx.z, thread, describe(site), first_thread_, describe(site_));
            std::abort();
        }
        if (++arrived_ == threads_) {
            arrived_ = 0;
            ++generation_;
            cv_.notify_all();
            return;
        }
        const unsigned long long generation = generation_;
        cv_.wait(lock, [&] { return generation_ != generation; });
    }

   private:
    static const char* describe(const void* site) { return site ? "a __syncthreads" : "the end of the kernel"; }

    std::mutex mutex_;
    std::condition_variable cv_;
    const unsigned threads_;
    unsigned arrived_ = 0, first_thread_ = 0;
    unsigned long long generation_ = 0;
    const void* site_ = nullptr;
};

thread_local BlockBarrier* t_barrier = nullptr;
thread_local unsigned t_linear = 0;

// Blocks run one at a time, so a race between blocks (two blocks writing one element, a block reading what
// another writes) cannot show up as a data race; it shows up as a result that depends on the block order.
// CUDA_EMU_BLOCK_ORDER=reverse|shuffle changes the order (shuffle: fixed seed) to expose that.
std::vector<dim3> block_order(dim3 grid) {
    std::vector<dim3> order;
    order.reserve((size_t)grid.x * grid.y * grid.z);
    for (unsigned z = 0; z < grid.z; ++z)
        for (unsigned y = 0; y < grid.y; ++y)
            for (unsigned x = 0; x < grid.x; ++x) order.emplace_back(x, y, z);
    const char* mode = std::getenv("CUDA_EMU_BLOCK_ORDER");
    if (mode != nullptr && std::strcmp(mode, "reverse") == 0) {
        std::reverse(order.begin(), order.end());
    } else if (mode != nullptr && std::strcmp(mode, "shuffle") == 0) {
        std::mt19937 rng(12345);
        std::shuffle(order.begin(), order.end(), rng);
    } else if (mode != nullptr && *mode != '\0' && std::strcmp(mode, "forward") != 0) {
        std::fprintf(stderr, "cuda_emu: CUDA_EMU_BLOCK_ORDER must be forward, reverse or shuffle, not '%s'\n", mode);
        std::abort();
    }
    return order;
}

bool valid_config(dim3 grid, dim3 block) {
    const unsigned long long threads = (unsigned long long)block.x * block.y * block.z;
    return threads >= 1 && threads <= 1024 && block.x <= 1024 && block.y <= 1024 && block.z <= 64 && grid.x >= 1 &&
           grid.y >= 1 && grid.z >= 1 && grid.x <= 0x7fffffffu && grid.y <= 65535 && grid.z <= 65535;
}

}  // namespace

namespace cuda_emu {

bool launch_erased(dim3 grid, dim3 block, void (*trampoline)(const void*), const void* body) {
    if (!valid_config(grid, block)) {
        set_error(cudaErrorInvalidConfiguration);
        return false;
    }
    const unsigned threads = block.x * block.y * block.z;
    const std::vector<dim3> order = block_order(grid);
    BlockBarrier barrier(threads);
    std::vector<std::thread> workers;
    workers.reserve(threads);
    for (unsigned t = 0; t < threads; ++t) {
        workers.emplace_back([=, &barrier] {
            threadIdx = dim3(t % block.x, (t / block.x) % block.y, t / (block.x * block.y));
            blockDim = block;
            gridDim = grid;
            t_barrier = &barrier;
            t_linear = t;
            for (const dim3& b : order) {
                blockIdx = b;
                trampoline(body);
                barrier.wait(nullptr, t);  // the next block reuses the statics that stand for shared memory
            }
            t_barrier = nullptr;
        });
    }
    for (std::thread& w : workers) w.join();
    return true;
}

__attribute__((noinline)) void sync_threads() {
    if (t_barrier == nullptr) {
        std::fprintf(stderr, "cuda_emu: __syncthreads called outside a kernel\n");
        std::abort();
    }
    t_barrier->wait(__builtin_return_address(0), t_linear);
}

unsigned lane_id() { return t_linear % 32; }

}  // namespace cuda_emu

cudaError_t cudaGetLastError() { return static_cast<cudaError_t>(g_last_error.exchange(cudaSuccess)); }

const char* cudaGetErrorString(cudaError_t err) {
    switch (err) {
        case cudaSuccess:
            return "no error";
        case cudaErrorInvalidValue:
            return "invalid argument";
        case cudaErrorMemoryAllocation:
            return "out of memory";
        case cudaErrorInvalidConfiguration:
            return "invalid configuration argument";
    }
    return "unknown error";
}

cudaError_t cudaMalloc(void** ptr, size_t bytes) {
    if (ptr == nullptr) return cudaErrorInvalidValue;
    *ptr = nullptr;
    if (bytes == 0) return cudaSuccess;
    // Exact size, so AddressSanitizer's redzone starts right after the last byte; 0xFF bytes (NaN in FP32 and
    // FP16) stand for uninitialised device memory, so a kernel that reads what nobody wrote shows up as NaN.
    if (posix_memalign(ptr, 256, bytes) != 0) return cudaErrorMemoryAllocation;
    std::memset(*ptr, 0xff, bytes);
    return cudaSuccess;
}

cudaError_t cudaFree(void* ptr) {
    std::free(ptr);
    return cudaSuccess;
}

cudaError_t cudaMemcpy(void* dst, const void* src, size_t bytes, cudaMemcpyKind) {
    if (bytes != 0 && (dst == nullptr || src == nullptr)) return cudaErrorInvalidValue;
    if (bytes != 0) std::memmove(dst, src, bytes);
    return cudaSuccess;
}

cudaError_t cudaDeviceSynchronize() { return cudaSuccess; }  // launches are synchronous

cudaError_t cudaGetDeviceCount(int* count) {
    *count = 1;
    return cudaSuccess;
}

cudaError_t cudaGetDeviceProperties(cudaDeviceProp* prop, int device) {
    if (device != 0) return cudaErrorInvalidValue;
    std::memset(prop, 0, sizeof(*prop));
    std::snprintf(prop->name, sizeof(prop->name), "cuda_emu: CPU threads, no GPU");
    return cudaSuccess;
}
