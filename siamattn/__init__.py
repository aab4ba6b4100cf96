"""siamattn-trt: SiamAttn tracker from PyTorch training to TensorRT deployment.

Subpackages (each a top-level folder of the repository):
``siamattn.training`` (model, data, training), ``siamattn.export`` (ONNX graphs and engines),
``siamattn.plugins`` (TensorRT C++/CUDA plugins), ``siamattn.runtime`` (tracking loop over the engines).
``siamattn.config`` is the one configuration shared by all of them; ``siamattn.ops`` holds the PyTorch
reference deformable ops. Importing this package does not import torch.
"""

__version__ = "0.1.0"
