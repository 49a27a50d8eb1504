"""Golden outputs of the shipped models for a fixed set of patches (see ``regenerate.py``)."""
