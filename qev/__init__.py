"""qev: sealed-bid QEV auction keeper and clearing service."""

__version__ = "0.1.0"
