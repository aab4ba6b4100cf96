// __half for the CUDA-on-CPU emulation (see cuda_runtime.h). Conversions go through the compiler's _Float16
// (round to nearest even), independent of the library's own software conversion they are compared with.
#pragma once

#include <cstdint>
#include <cstring>

struct __half {
    uint16_t bits;
};

inline __half __ushort_as_half(unsigned short bits) { return __half{bits}; }

inline __half __float2half_rn(float value) {
    const _Float16 h = static_cast<_Float16>(value);
    __half out;
    std::memcpy(&out.bits, &h, sizeof(out.bits));
    return out;
}

inline float __half2float(__half value) {
    _Float16 h;
    std::memcpy(&h, &value.bits, sizeof(h));
    return static_cast<float>(h);
}
