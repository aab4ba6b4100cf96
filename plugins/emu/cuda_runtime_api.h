// What TensorRT's headers take from cuda_runtime_api.h, for the CUDA-on-CPU emulation (see cuda_runtime.h).
#pragma once

#include "cuda_runtime.h"

using cudaEvent_t = struct cuda_emu_event*;
