"""Backbones for IsoMax / IsoMax+ / SoftMax training, created by name.

>>> from isomax.models import create_model, list_models
>>> list_models()
['cnn-28', 'cnn-32', 'cnn-32-half', 'cnn-32-small', 'densenet-bc-100', 'mlp-28', 'resnet110', 'resnet34']
>>> model = create_model("densenet-bc-100", num_classes=10, head="isomaxplus")

Every model is an :class:`IsoMaxModel`: ``forward_features(x)`` gives the pooled features
``(B, num_features)``, ``forward_head(f)`` the logits, ``feature_list(x)`` the per-stage feature
maps (for the Mahalanobis detector) and ``reset_head(kind, num_classes)`` swaps the head.
"""

from ._base import IsoMaxModel, create_model, list_models, register_model
from .cnn import SmallCNN
from .densenet import DenseNet
from .mlp import MLP
from .resnet import CifarResNet

__all__ = [
    "CifarResNet",
    "DenseNet",
    "IsoMaxModel",
    "MLP",
    "SmallCNN",
    "create_model",
    "list_models",
    "register_model",
]
