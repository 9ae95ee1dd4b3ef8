"""Config: YAML with positions -> validated, frozen objects."""

from kerastrain.config.loading import LoadedConfig, load_config
from kerastrain.config.schema import Config

__all__ = ["Config", "LoadedConfig", "load_config"]
