"""The relativistic average GAN (Jolicoeur-Martineau 2019): D says how much more real a real
sample looks than the average fake, and G is trained on the same comparison the other way."""

import torch
import torch.nn.functional as F

from ganlab import diagnostics as diag
from ganlab.families import LatentGAN
from ganlab.families.base import Phase, full


def relativistic(real_out, fake_out):
    """The RaGAN loss of D's outputs: real should beat the average fake, and fake lose to
    the average real (for G's loss, pass them swapped)."""
    return (F.softplus(fake_out.mean() - real_out) + F.softplus(fake_out - real_out.mean())).mean()


class RelativisticGAN(LatentGAN):
    name = "the relativistic GAN"

    def phases(self):
        return (
            self.d_phase(self.d_loss, repeats=self.n_critic),
            Phase("g", "g", loss=self.g_loss),
        )

    def d_loss(self, item, ctx):
        real, _ = item
        with torch.no_grad():
            fake = self.g(self.sample_z(len(real), ctx.generator))
        step = self.d_step(self.discriminator, real, fake, ctx, d_loss=relativistic)
        return step.loss, step.stats()

    def g_loss(self, item, ctx):
        real, _ = item
        fake = self.g(self.sample_z(len(real), ctx.generator))
        # D sees both as in its own step (d_view: what augment=... shows it)
        fake_out, real_out = (full(self.discriminator(self.d_view(x, ctx))) for x in (fake, real))
        loss = relativistic(fake_out, real_out)
        return loss, {diag.G_LOSS: loss.detach()}
