// Internal helpers shared by the CPU and CUDA implementations (not part of the public C API).
#pragma once

#include <stdint.h>

#include "siamattn_deform.h"

namespace siamattn {

// Records a printf-style message for siamattn_last_error() and returns `status`.
int32_t fail(int32_t status, const char* fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;

void clear_error();

}  // namespace siamattn
