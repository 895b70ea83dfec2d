"""Evaluation protocol files (YAML), shipped inside the package as ``framevrnn.protocols``."""
