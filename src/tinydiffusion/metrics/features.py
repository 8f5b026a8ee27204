"""Feature extractors by name: the shipped domain classifiers, Inception-V3 from a local file, or your own.

``get_extractor(spec, device)`` understands

* ``"fashion-mnist"``, ``"mnist"``, ``"dcss-tiles"``: the small CNN classifiers shipped in
  ``tinydiffusion/assets/features-<name>.safetensors`` (see :mod:`.classifier`), with a class head;
* ``"inception:/path/to/weights.pth"``: torch-fidelity's Inception-V3 (``FeatureExtractorInceptionV3``,
  the TF-ported FID network that torchmetrics also wraps), 2048-d pool features, loaded from the file
  you give; tinydiffusion never downloads weights;
* ``"python:module:callable"`` or ``"python:/path/file.py:callable"``: ``callable()`` must return an
  ``nn.Module`` mapping images (N, C, H, W) in [−1, 1] to features (N, d).

Every extractor takes float images (N, C, H, W) in [−1, 1] at any size and works in batches without
gradients. A ``fingerprint`` (a hash of the weights or of the spec) keys cached real-data features.
"""

from __future__ import annotations

import hashlib
import importlib
import importlib.util
import json
from collections.abc import Callable
from importlib import resources
from pathlib import Path

import numpy as np
import torch
from safetensors import safe_open
from safetensors.torch import load_file
from torch import Tensor, nn

from ..errors import UserError
from .classifier import ClassifierConfig, DomainClassifier

SHIPPED = ("fashion-mnist", "mnist", "dcss-tiles")
#: dataset name → shipped extractor trained on that family
DEFAULT_FOR_DATASET = {"fashion-mnist": "fashion-mnist", "fashion-mnist-mini": "fashion-mnist",
                       "mnist": "mnist", "dcss-tiles": "dcss-tiles"}
INCEPTION_HELP = ("features 'inception' needs a local weights file, as in inception:/path/to/"
                  "weights-inception-2015-12-05-6726825d.pth (tinydiffusion never downloads weights)")


def images_to_tensor(images: np.ndarray) -> Tensor:
    """uint8 images (N, H, W, C) → float32 (N, C, H, W) in [−1, 1] (x / 127.5 − 1, as training batches)."""
    if images.dtype != np.uint8 or images.ndim != 4:
        raise UserError(f"images must be uint8 (N, H, W, C), got {images.dtype} {images.shape}")
    return torch.from_numpy(np.ascontiguousarray(images)).permute(0, 3, 1, 2).float() / 127.5 - 1


class Extractor:
    """A feature network with a name: ``features(x)`` (N, d) and, for classifiers, ``logits(x)``.

    ``features_fn`` / ``logits_fn`` map a batch on ``device`` to (B, d) / (B, classes); ``in_channels``
    (when known) is checked against the input so a grey extractor never silently reads RGB images.
    """

    def __init__(self, name: str, module: nn.Module, features_fn: Callable[[Tensor], Tensor], *,
                 fingerprint: str, device: torch.device | str = "cpu", in_channels: int | None = None,
                 logits_fn: Callable[[Tensor], Tensor] | None = None, class_names: list[str] | None = None,
                 metadata: dict | None = None, batch_size: int = 500):
        self.name = name
        self.fingerprint = fingerprint
        self.device = torch.device(device)
        self.module = module.to(self.device).eval()
        self.in_channels = in_channels
        self.class_names = class_names
        self.metadata = metadata or {}
        self.batch_size = batch_size
        self._features_fn = features_fn
        self._logits_fn = logits_fn

    @property
    def has_classifier(self) -> bool:
        """True when :meth:`logits` is available."""
        return self._logits_fn is not None

    def _run(self, fn: Callable[[Tensor], Tensor], x: Tensor, what: str) -> Tensor:
        if x.ndim != 4:
            raise UserError(f"feature extractor {self.name!r} takes images (N, C, H, W), got shape {tuple(x.shape)}")
        if self.in_channels is not None and x.shape[1] != self.in_channels:
            raise UserError(f"feature extractor {self.name!r} takes {self.in_channels}-channel images but got "
                            f"{x.shape[1]}-channel ones; choose features that match the data")
        outputs = []
        with torch.no_grad():
            for start in range(0, x.shape[0], self.batch_size):
                out = fn(x[start:start + self.batch_size].to(self.device, torch.float32))
                if out.ndim != 2 or out.shape[0] != min(self.batch_size, x.shape[0] - start):
                    raise UserError(f"feature extractor {self.name!r} must return {what} of shape (N, d), "
                                    f"got {tuple(out.shape)}")
                outputs.append(out.float().cpu())
        return torch.cat(outputs)

    def features(self, x: Tensor) -> Tensor:
        """Features (N, d), float32 on the CPU, of images (N, C, H, W) in [−1, 1]."""
        return self._run(self._features_fn, x, "features")

    def logits(self, x: Tensor) -> Tensor:
        """Class logits (N, classes), float32 on the CPU; a UserError for extractors without a class head."""
        if self._logits_fn is None:
            raise UserError(f"feature extractor {self.name!r} has no classifier head, so it cannot score classes")
        return self._run(self._logits_fn, x, "logits")


def shipped_weights_path(name: str) -> Path:
    """Path of the shipped weights ``tinydiffusion/assets/features-<name>.safetensors``."""
    return Path(str(resources.files("tinydiffusion") / "assets" / f"features-{name}.safetensors"))


def load_classifier(path: str | Path) -> tuple[DomainClassifier, dict]:
    """A :class:`DomainClassifier` and its metadata (``config`` and ``classes`` JSON-decoded) from safetensors."""
    with safe_open(str(path), framework="pt") as f:
        raw = f.metadata() or {}
    metadata = dict(raw)
    for key in ("config", "classes"):
        metadata[key] = json.loads(raw[key])
    model = DomainClassifier(ClassifierConfig.from_dict(metadata["config"]))
    model.load_state_dict(load_file(str(path)))
    return model.eval(), metadata


def _file_digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()[:16]


def _shipped(name: str, device: torch.device | str) -> Extractor:
    path = shipped_weights_path(name)
    if not path.is_file():
        raise UserError(f"the shipped feature weights {path.name} are missing from tinydiffusion/assets; reinstall "
                        "tinydiffusion, or run scripts/train_feature_extractors.py in a source checkout")
    model, metadata = load_classifier(path)
    return Extractor(name, model, model.features, fingerprint=f"{name}-{_file_digest(path)}", device=device,
                     in_channels=model.config.in_channels, logits_fn=model, class_names=metadata["classes"],
                     metadata=metadata)


def _inception(path_text: str, device: torch.device | str) -> Extractor:
    if not path_text:
        raise UserError(INCEPTION_HELP)
    path = Path(path_text).expanduser()
    if not path.is_file():
        raise UserError(f"Inception weights file {path} does not exist; {INCEPTION_HELP}")
    try:
        from torch_fidelity.feature_extractor_inceptionv3 import FeatureExtractorInceptionV3
    except ImportError:
        raise UserError("features 'inception' needs the torch-fidelity package (pip install torch-fidelity), "
                        "or use the shipped features") from None
    network = FeatureExtractorInceptionV3("inception-v3-compat", ["2048"], feature_extractor_weights_path=str(path))

    def pool_features(x: Tensor) -> Tensor:
        # torch-fidelity's network takes uint8 RGB and resizes to 299 itself; grey becomes RGB
        pixels = ((x + 1) * 127.5).round().clamp(0, 255).to(torch.uint8)
        if pixels.shape[1] == 1:
            pixels = pixels.repeat(1, 3, 1, 1)
        return network(pixels)[0]

    return Extractor("inception", network, pool_features, fingerprint=f"inception-{_file_digest(path)}",
                     device=device, batch_size=64)


def _import_callable(target: str) -> Callable[[], nn.Module]:
    """``module:callable`` or ``/path/file.py:callable`` → the callable."""
    module_name, _, attribute = target.rpartition(":")
    if not module_name or not attribute:
        raise UserError(f"features 'python:{target}' must name a module and a callable, as in python:mypkg.feats:build")
    try:
        if module_name.endswith(".py"):
            file = Path(module_name).expanduser()
            if not file.is_file():
                raise ImportError(f"no file {file}")
            spec = importlib.util.spec_from_file_location(file.stem, file)
            module = importlib.util.module_from_spec(spec)
            spec.loader.exec_module(module)
        else:
            module = importlib.import_module(module_name)
    except ImportError as e:
        raise UserError(f"cannot import {module_name!r} for features 'python:{target}': {e}") from None
    factory = getattr(module, attribute, None)
    if not callable(factory):
        raise UserError(f"{module_name!r} has no callable {attribute!r} (features 'python:{target}')")
    return factory


def _user(target: str, device: torch.device | str) -> Extractor:
    module = _import_callable(target)()
    if not isinstance(module, nn.Module):
        raise UserError(f"features 'python:{target}' must return a torch.nn.Module, got {type(module).__name__}")
    fingerprint = "python-" + hashlib.sha256(target.encode()).hexdigest()[:16]
    return Extractor(f"python:{target}", module, module, fingerprint=fingerprint, device=device)


def get_extractor(name_or_spec: str | Extractor, device: torch.device | str = "cpu") -> Extractor:
    """The extractor named by ``name_or_spec`` (module docstring lists the forms); an Extractor passes through."""
    if isinstance(name_or_spec, Extractor):
        return name_or_spec
    spec = str(name_or_spec).strip()
    if spec in SHIPPED:
        return _shipped(spec, device)
    kind, _, rest = spec.partition(":")
    if kind == "inception":
        return _inception(rest, device)
    if kind == "python":
        return _user(rest, device)
    raise UserError(f"unknown features {spec!r}; use one of {', '.join(SHIPPED)}, "
                    "inception:/path/to/weights.pth or python:module:callable")


def default_extractor_for(dataset_name: str) -> str | None:
    """The shipped extractor for a dataset name (``fashion-mnist-mini`` → ``fashion-mnist``), else None."""
    return DEFAULT_FOR_DATASET.get(dataset_name)
