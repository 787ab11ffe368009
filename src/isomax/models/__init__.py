"""Backbones for IsoMax / IsoMax+ / SoftMax training, created by name.

>>> from isomax.models import create_model, list_models
>>> list_models()
['cnn-28', 'cnn-32', 'cnn-32-half', 'cnn-32-small', 'densenet-bc-100', 'mlp-28', 'resnet110', 'resnet34']
>>> model = create_model("densenet-bc-100", num_classes=10, head="isomaxplus")
>>> model = create_model("timm:resnet18", num_classes=10, head="isomaxplus")  # any timm / torchvision classifier

Every model is an :class:`IsoMaxModel`: ``forward_features(x)`` gives the pooled features
``(B, num_features)``, ``forward_head(f)`` the logits, ``feature_list(x)`` the per-stage feature
maps (for the Mahalanobis detector) and ``reset_head(kind, num_classes)`` swaps the head.
"""

from ._base import IsoMaxModel, check_model_name, create_model, list_models, register_model
from .cnn import SmallCNN
from .densenet import DenseNet
from .library import LibraryModel, library_data_config
from .mlp import MLP
from .resnet import CifarResNet

__all__ = [
    "CifarResNet",
    "DenseNet",
    "IsoMaxModel",
    "LibraryModel",
    "MLP",
    "SmallCNN",
    "check_model_name",
    "create_model",
    "library_data_config",
    "list_models",
    "register_model",
]
