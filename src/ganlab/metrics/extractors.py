"""Feature extractors for sample-quality metrics: torch-fidelity's InceptionV3 or a classifier.

Every extractor maps images in [-1, 1], shape (B, C, H, W), on any device, to
``{"features": (B, F), "logits": (B, K)}`` float32 tensors on the CPU, computed in batches
without gradients; ``ganlab.metrics.fidelity`` turns them into FID, KID, IS and precision/recall.
"""

from __future__ import annotations

import hashlib
import os
import pickle
from collections.abc import Callable
from typing import Protocol

import torch
from torch import Tensor, nn
from torch_fidelity.feature_extractor_inceptionv3 import (
    URL_INCEPTION_V3,
    FeatureExtractorInceptionV3,
)
from tqdm import tqdm

from ganlab.errors import UserError

INCEPTION_FILE = URL_INCEPTION_V3.rsplit("/", 1)[-1]  # weights-inception-2015-12-05-6726825d.pth


class Extractor(Protocol):
    """What the metrics need from a feature extractor."""

    name: str  # short, used in log keys: val/fid_<name>_10k

    @property
    def fingerprint(self) -> str:
        """Identifies the weights, so that cached real statistics follow a retrained net."""
        ...

    def __call__(self, images: Tensor) -> dict[str, Tensor]: ...


def module_sha1(module: nn.Module) -> str:
    """First 12 hex digits of the SHA-1 of a module's state dict (names and bytes)."""
    digest = hashlib.sha1()
    for name, value in sorted(module.state_dict().items()):
        digest.update(name.encode())
        raw = value.detach().cpu().contiguous().reshape(-1).view(torch.uint8)
        digest.update(raw.numpy().tobytes())
    return digest.hexdigest()[:12]


def _check_images(images: Tensor, channels: tuple[int, ...] | None = None) -> None:
    if images.dim() != 4 or not images.is_floating_point() or len(images) == 0:
        raise ValueError(
            f"expected float images (B, C, H, W) with B > 0 in [-1, 1], "
            f"got {images.dtype} {tuple(images.shape)}"
        )
    if channels is not None and images.shape[1] not in channels:
        raise ValueError(f"expected C in {channels}, got images of shape {tuple(images.shape)}")


@torch.no_grad()
def _batched(
    fn: Callable[[Tensor], dict[str, Tensor]],
    images: Tensor,
    batch_size: int,
    device: torch.device,
    desc: str = "features",
) -> dict[str, Tensor]:
    """Run ``fn`` on batches moved to ``device``; outputs concatenated on the CPU as float32.
    A progress bar counts the images on a terminal when there are several batches (InceptionV3
    on a CPU scores ~7 images/s)."""
    parts: dict[str, list[Tensor]] = {}
    bar = tqdm(
        total=len(images),
        desc=f"metrics: {desc}",
        unit="img",
        leave=False,
        disable=None if len(images) > batch_size else True,  # None: only on a terminal
    )
    with bar:
        for chunk in images.split(batch_size):
            for key, value in fn(chunk.to(device, non_blocking=True)).items():
                value = value.float() if value.is_floating_point() else value  # labels stay ints
                parts.setdefault(key, []).append(value.cpu())
            bar.update(len(chunk))
    return {key: torch.cat(values) for key, values in parts.items()}


def to_uint8_rgb(images: Tensor) -> Tensor:
    """[-1, 1] floats (B, 1 or 3, H, W) -> uint8 (B, 3, H, W), the input torch-fidelity expects.

    Rounds as StyleGAN2-ADA's metrics do (``x * 127.5 + 128``, clamped, truncated); gray images
    are repeated to 3 channels, as torch-fidelity's PIL-to-RGB conversion does.
    """
    if images.shape[1] == 1:
        images = images.expand(-1, 3, -1, -1)
    return (images * 127.5 + 128).clamp(0, 255).to(torch.uint8)


#: the option that names a local weights file, in the message of a missing one (training's;
#: ``python -m ganlab.evaluate`` says ``inception_weights``)
WEIGHTS_OPTION = "callbacks.metrics.inception_weights"


def _inception_error(reason: str, option: str = WEIGHTS_OPTION) -> UserError:
    return UserError(
        f"InceptionV3 weights unavailable ({reason}): download {URL_INCEPTION_V3} and set "
        f"{option}=/path/to/{INCEPTION_FILE}"
    )


def _load_inception(
    weights_path: str | None, option: str = WEIGHTS_OPTION
) -> FeatureExtractorInceptionV3:
    if weights_path is not None and not os.path.isfile(weights_path):
        raise _inception_error(f"no file {weights_path}", option)
    try:
        return FeatureExtractorInceptionV3(
            "inception-v3-compat",
            ["2048", "logits_unbiased"],
            feature_extractor_weights_path=weights_path,
            verbose=False,
        )
    except (OSError, RuntimeError, EOFError, pickle.UnpicklingError) as err:
        # OSError covers URLError (no network) and unreadable files; RuntimeError a bad state dict
        lines = str(err).strip().splitlines() or [""]
        raise _inception_error(f"{type(err).__name__}: {lines[0]}", option) from err


class InceptionExtractor:
    """InceptionV3 pool features (2048) and unbiased logits (1008), computed by torch-fidelity.

    The TF-compatible network of FID (Heusel et al. 2017) and IS (Salimans et al. 2016);
    torch-fidelity resizes to 299x299 inside. Without ``weights_path`` torch-fidelity downloads
    the weights to the torch hub cache (needs network).
    """

    name = "inception"

    def __init__(
        self,
        weights_path: str | None = None,
        device: str | torch.device = "cpu",
        batch_size: int = 64,
        option: str = WEIGHTS_OPTION,
    ):
        self.device = torch.device(device)
        self.batch_size = batch_size
        self.model = _load_inception(weights_path, option).to(self.device)
        self._fingerprint = module_sha1(self.model)

    @property
    def fingerprint(self) -> str:
        return self._fingerprint

    def __call__(self, images: Tensor) -> dict[str, Tensor]:
        _check_images(images, channels=(1, 3))
        return _batched(self._forward, images, self.batch_size, self.device, "InceptionV3")

    def _forward(self, images: Tensor) -> dict[str, Tensor]:
        features, logits = self.model(to_uint8_rgb(images))  # (B, 2048), (B, 1008)
        return {"features": features, "logits": logits}


class ClassifierExtractor:
    """Features and logits of a classifier trained on the data set (e.g. a domain classifier).

    ``classifier.features(x)`` gives (B, F) and ``classifier(x)`` the logits (B, K), for
    images in [-1, 1]; it runs on the device of its parameters, in eval mode. A classifier
    with ``outputs(x)`` (features, logits and labels in one pass) is called once instead.
    """

    def __init__(self, classifier: nn.Module, name: str, batch_size: int = 256):
        if not callable(getattr(classifier, "features", None)):
            raise ValueError(
                f"{type(classifier).__name__} has no features(x) method: ClassifierExtractor "
                "needs features(x) -> (B, F) and forward(x) -> logits (B, K)"
            )
        if not name or "/" in name:
            raise ValueError(f"extractor name must be non-empty without '/', got {name!r}")
        self.classifier = classifier
        self.name = name
        self.batch_size = batch_size

    @property
    def fingerprint(self) -> str:
        # recomputed on each use: the classifier may be retrained after this object is built
        return module_sha1(self.classifier)

    def __call__(self, images: Tensor) -> dict[str, Tensor]:
        _check_images(images)
        param = next(self.classifier.parameters(), None)
        device = param.device if param is not None else torch.device("cpu")
        was_training = self.classifier.training
        self.classifier.eval()
        try:
            return _batched(self._forward, images, self.batch_size, device, self.name)
        finally:
            self.classifier.train(was_training)

    def _forward(self, images: Tensor) -> dict[str, Tensor]:
        outputs = getattr(self.classifier, "outputs", None)
        if callable(outputs):  # one pass for features, logits (and labels)
            return outputs(images)
        return {"features": self.classifier.features(images), "logits": self.classifier(images)}
