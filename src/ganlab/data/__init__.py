"""LightningDataModules: toy mixtures (``toy``)."""
