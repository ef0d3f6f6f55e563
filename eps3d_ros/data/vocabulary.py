"""The class vocabulary of synthetic scenes and the named colours of their things.

Class names are bare English nouns (they double as CLIP prompts); the index in ``CLASS_NAMES`` is
the semantic id, 0 = background (nothing hit).
"""

from __future__ import annotations

__all__ = ["CLASS_NAMES", "CLASS_IDS", "STUFF_CLASSES", "THING_CLASSES", "TABLE_OBJECT_CLASSES", "COLOURS"]

CLASS_NAMES: tuple[str, ...] = (
    "background",
    "floor",
    "wall",
    "table",
    "chair",
    "mug",
    "bowl",
    "box",
    "bottle",
    "ball",
    "book",
    "lamp",
    "can",
    "plant",
)
CLASS_IDS: dict[str, int] = {name: i for i, name in enumerate(CLASS_NAMES)}
STUFF_CLASSES: tuple[int, ...] = (CLASS_IDS["floor"], CLASS_IDS["wall"], CLASS_IDS["table"])
THING_CLASSES: tuple[int, ...] = tuple(i for i in range(1, len(CLASS_NAMES)) if i not in STUFF_CLASSES)
# Things that stand on the table top (chairs stand on the floor).
TABLE_OBJECT_CLASSES: tuple[int, ...] = tuple(i for i in THING_CLASSES if CLASS_NAMES[i] != "chair")

# Named colours (albedo in [0, 1], sRGB-ish) for things, so "red mug" is a meaningful query.
COLOURS: dict[str, tuple[float, float, float]] = {
    "red": (0.82, 0.10, 0.10),
    "green": (0.12, 0.62, 0.18),
    "blue": (0.12, 0.28, 0.85),
    "yellow": (0.95, 0.85, 0.12),
    "white": (0.93, 0.93, 0.93),
    "black": (0.10, 0.10, 0.10),
    "orange": (0.96, 0.50, 0.06),
    "purple": (0.52, 0.16, 0.68),
}
