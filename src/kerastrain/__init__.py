"""kerastrain: a YAML experiment becomes a trained, validated Keras model and a run directory."""

__version__ = "0.1.0"
