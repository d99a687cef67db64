"""ganlab's OmegaConf resolvers, registered on import: by training (``ganlab.train``, before
Hydra resolves anything, even for ``--cfg job --resolve``) and by the checkpoint commands
(``ganlab.assemble``), without importing what builds the nets."""

import math

from omegaconf import OmegaConf

# ${ganlab.mul:100,${model.pack}}: PacGAN's batches hold 100 packs of m samples
OmegaConf.register_new_resolver("ganlab.mul", lambda *xs: math.prod(xs), replace=True)
