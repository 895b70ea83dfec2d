"""Hydra configs of framevrnn, installed as the package ``framevrnn.configs``.

Importing it registers the structured-config schemas the YAML files extend, so composing from
``pkg://framevrnn.configs`` works from any entry point.
"""
from framevrnn import config_schema  # noqa: F401
