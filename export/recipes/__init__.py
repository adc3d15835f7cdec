"""The reference models' recipes, one module per model id (see ``base.Recipe``).

    >>> from radedge.export.recipes import recipe
    >>> recipe("vcf").plan
"""

from __future__ import annotations

from importlib import import_module

from .base import Recipe

#: Model id -> the module (in this package) whose ``RECIPE`` trains it.
RECIPES: dict[str, str] = {
    "bone-tumor": "bone_tumor",
    "vcf": "vcf",
    "spine-lesions": "spine_lesions",
    "bone-quality": "bone_quality",
    "tumor-cls": "tumor_cls",
}


def recipe(model_id: str) -> Recipe:
    """The recipe of ``model_id``; a ValueError lists the known ids."""
    if model_id not in RECIPES:
        raise ValueError(f"no recipe for model {model_id!r}; known: {', '.join(RECIPES)}")
    return import_module(f".{RECIPES[model_id]}", __name__).RECIPE


__all__ = ["RECIPES", "Recipe", "recipe"]
