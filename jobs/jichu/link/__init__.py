"""Probabilistic record linkage driven by a declarative spec (`jichu link`, `conf/linkage/`)."""
