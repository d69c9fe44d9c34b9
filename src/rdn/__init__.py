"""RDN: the Resettlement Diplomacy Network's coordination platform."""

__version__ = "0.1.0"
