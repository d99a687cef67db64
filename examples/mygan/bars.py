"""A data set made on the fly: a bright bar in one of 4 bands of rows (its class) on black."""

import torch

from ganlab.data.image_base import InMemoryImageData, TensorSource


class Bars(InMemoryImageData):
    def __init__(self, batch_size=32, seed=0, image_size=16):
        super().__init__(batch_size, seed, image_size, channels=1, num_classes=4)

    def load(self, split):  # "train" or "test"
        g = torch.Generator().manual_seed(0 if split == "train" else 1)
        n, band = (512 if split == "train" else 128), self.image_size // 4
        labels = torch.randint(4, (n,), generator=g)
        rows = labels * band + torch.randint(band, (n,), generator=g)
        images = torch.zeros(n, 1, self.image_size, self.image_size, dtype=torch.uint8)
        images[torch.arange(n), 0, rows] = 255
        return TensorSource(images, labels)  # uint8 (N, 1, H, W), int64 (N,)
