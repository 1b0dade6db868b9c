"""reprolm: rebuild any released language model from its inputs, and prove it."""

__version__ = "0.1.0"
