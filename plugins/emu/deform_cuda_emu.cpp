// The CUDA kernels, unchanged, compiled by the host compiler against the emulation headers in this folder.
#include "deform_cuda.cu"
