"""The pipeline: ``Model`` (read -> scope -> lookup table -> plan -> flags), ``ModelSet``
(several models, each image routed by scope), and the ``ExecutionPlan`` that runs a model's
tensors on a device."""

from __future__ import annotations

from .model import Model, conclude, describe_image, describe_source, intensity_lut, load_model
from .model_set import ModelSet, load_models
from .plan import CpuPlan, ExecutionContext, ExecutionPlan, decode_outputs
from .read_ahead import ReadOutcome, read_ahead
from .scope import FOR_PROCESSING_SOP_CLASSES, PRESENTATION_SOP_CLASSES, SCOPE_MODES, Refusal, check_scope, scope_refusal
from .timer import StageTimer

__all__ = [
    "FOR_PROCESSING_SOP_CLASSES",
    "PRESENTATION_SOP_CLASSES",
    "SCOPE_MODES",
    "CpuPlan",
    "ExecutionContext",
    "ExecutionPlan",
    "Model",
    "ModelSet",
    "ReadOutcome",
    "Refusal",
    "StageTimer",
    "check_scope",
    "conclude",
    "decode_outputs",
    "describe_image",
    "describe_source",
    "intensity_lut",
    "load_model",
    "load_models",
    "read_ahead",
    "scope_refusal",
]
