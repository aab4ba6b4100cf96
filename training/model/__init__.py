"""SiamAttn in PyTorch: atrous ResNet-50, deformable Siamese attention, SiamRPN++ heads, region refinement."""

from siamattn.training.model.checkpoint import load_checkpoint, save_checkpoint
from siamattn.training.model.siamattn import SiamAttn, build_model

__all__ = ["SiamAttn", "build_model", "load_checkpoint", "save_checkpoint"]
