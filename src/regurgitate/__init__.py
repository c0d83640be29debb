"""regurgitate: what happens to translation models trained on other models' output."""

__version__ = "0.1.0"
