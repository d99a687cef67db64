"""FID's first term alone: how far the mean of the samples' features is from the real one's
(a shift of the whole distribution, blind to its spread)."""

from ganlab.metrics.entry import FEATURES, ImageMetric


class MeanGap(ImageMetric):
    name, label, goal, fmt, needs = "mean_gap", "mean gap", "min", ".3f", (FEATURES,)

    def compute(self, inputs):
        gap = inputs.features.double().mean(0) - inputs.real.mu.double()
        return {"mean_gap": float(gap.norm())}
