"""hwnas: hardware-aware neural architecture search for mobile CNNs."""

__version__ = "0.1.0"
