// Host-side tensor bytes in a siamattn dtype (FP16 as bit patterns) and the agreement rule, shared by the
// self-test programs (src/selftest.cpp on a GPU, emu/trt_plugin_driver.cpp on the emulation).
#pragma once

#include <cmath>
#include <cstring>
#include <vector>

#include "siamattn_deform.h"

namespace siamattn {

inline std::vector<unsigned char> encode(const std::vector<float>& v, int dtype) {
    const size_t elem = dtype == SIAMATTN_FLOAT16 ? 2 : 4;
    std::vector<unsigned char> out(v.size() * elem);
    for (size_t i = 0; i < v.size(); ++i) {
        if (dtype == SIAMATTN_FLOAT16) {
            const uint16_t h = siamattn_float_to_half(v[i]);
            std::memcpy(&out[i * 2], &h, 2);
        } else {
            std::memcpy(&out[i * 4], &v[i], 4);
        }
    }
    return out;
}

inline float decode(const std::vector<unsigned char>& buf, size_t i, int dtype) {
    if (dtype == SIAMATTN_FLOAT16) {
        uint16_t h;
        std::memcpy(&h, &buf[i * 2], 2);
        return siamattn_half_to_float(h);
    }
    float f;
    std::memcpy(&f, &buf[i * 4], 4);
    return f;
}

// `got` agrees with `want` when every element is finite and within tol of it, after allowing one FP16 output
// rounding step (the two sides may round a sum that differs in its last bits to neighbouring halves).
struct Agreement {
    double max_err = 0.0, max_excess = 0.0, max_ref = 0.0, tol = 0.0;
    bool ok = false;
};

inline Agreement agreement(const std::vector<unsigned char>& want, const std::vector<unsigned char>& got, size_t n,
                           int dtype) {
    Agreement a;
    bool finite = true;
    for (size_t i = 0; i < n; ++i) {
        const double w = decode(want, i, dtype), g = decode(got, i, dtype);
        finite = finite && std::isfinite(g);
        a.max_ref = std::fmax(a.max_ref, std::fabs(w));
        a.max_err = std::fmax(a.max_err, std::fabs(w - g));
        const double slack = dtype == SIAMATTN_FLOAT16 ? std::ldexp(std::fabs(w), -10) : 0.0;
        a.max_excess = std::fmax(a.max_excess, std::fabs(w - g) - slack);
    }
    a.tol = (dtype == SIAMATTN_FLOAT16 ? 2e-3 : 2e-5) * std::fmax(a.max_ref, 1.0);
    a.ok = finite && a.max_excess <= a.tol;
    return a;
}

}  // namespace siamattn
