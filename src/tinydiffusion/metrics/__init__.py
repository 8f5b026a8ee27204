"""Offline evaluation of generated images: Fréchet distance, KID, precision/recall and class accuracy.

Distances are measured in the feature space of a small classifier trained per dataset family and
shipped with the package (``fashion-mnist``, ``mnist``, ``dcss-tiles``), Inception-V3 from a local
weights file, or a network you supply (``python:module:callable``). See ``docs/metrics.md``.

    from tinydiffusion.metrics import evaluate_images
    scores = evaluate_images(samples_uint8, reference="fashion-mnist", image_size=28, labels=labels)
"""

from .evaluate import class_accuracy, evaluate_images
from .features import Extractor, default_extractor_for, get_extractor, images_to_tensor
from .frechet import feature_statistics, frechet_distance, frechet_distance_from_features
from .kid import kernel_inception_distance
from .prdc import precision_recall
from .reference import RealFeatures, fd_floor, real_features

__all__ = ["evaluate_images", "class_accuracy", "Extractor", "get_extractor", "default_extractor_for",
           "images_to_tensor", "feature_statistics", "frechet_distance", "frechet_distance_from_features",
           "kernel_inception_distance", "precision_recall", "RealFeatures", "real_features", "fd_floor"]
