"""Deformable convolution and deformable RoI pooling: CUDA kernels, a CPU implementation sharing their
arithmetic, and TensorRT plugins (see plugins/README.md). ``library`` finds, builds and binds them."""
