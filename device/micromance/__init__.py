"""Micromance: a kitchen-counter device for small, consistent gestures of care."""

__version__ = "2.0.0"
