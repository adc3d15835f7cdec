"""What models concluded: ``Prediction`` (one model), ``ImageAnalysis`` (several), the flags
raised by rules over any head kind, JSON, and the overlay."""

from __future__ import annotations

from .flags import UNLOCATED, Flag, evaluate_flags
from .overlay import DisplayImage, render_overlay
from .prediction import ImageAnalysis, Prediction

__all__ = ["UNLOCATED", "DisplayImage", "Flag", "ImageAnalysis", "Prediction", "evaluate_flags", "render_overlay"]
