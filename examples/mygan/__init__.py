"""An example of a researcher's own package for ganlab: a family, a data set, a metric and a
generator, each one class and one YAML (README, "Extending ganlab")."""
