"""Which of an experiment's channels holds the nuclei when the recipe does not say.

Instruments name channels differently (ImageXpress ``w1``,
Operetta / Opera Phenix ``ch1``, Cellomics ``d0``, IN Cell the filter name such as
``DAPI``); a recipe that names no channels must still run on every one of them, as the
web's new-run page already suggests. The rule, in order:

1. a channel whose name is a nuclear stain (DAPI, Hoechst, DRAQ5, "nuc…"), when
   exactly one is;
2. otherwise the first channel in natural order (``ch2`` before ``ch10``): by HCS
   convention channel 1 is the nuclear stain (what the ImageXpress default ``w1`` means).

The cells channel (used only with ``secondary``) is the first other channel, or the
nuclei channel itself when there is no other. :func:`resolve_channels` applies the rule
to a recipe (Lookup and ``plateseg plan``); Lookup records the choice and why
(``lookup-report.json``: ``channels``, ``channels_detected``, ``channels_reason``).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from plateseg.errors import RecipeError

if TYPE_CHECKING:
    from plateseg.contracts import Recipe

__all__ = [
    "NUCLEAR_STAIN",
    "ChannelChoice",
    "channel_sort_key",
    "default_channels",
    "natural_order",
    "resolve_channels",
]

#: Channel names that say "nuclear stain" (case-insensitive, anywhere in the name).
NUCLEAR_STAIN = re.compile(r"dapi|hoechst|h33342|draq ?[57]|nuc", re.IGNORECASE)


def channel_sort_key(name: str) -> list[tuple[int, int, str]]:
    """Sort key of a channel name: digit runs compare as numbers (``w2`` before ``w10``)."""
    return [
        (0, int(part), "") if part.isdigit() else (1, 0, part.lower())
        for part in re.split(r"(\d+)", name)
        if part
    ]


def natural_order(channels: Iterable[str]) -> list[str]:
    """Channels sorted by :func:`channel_sort_key`, each once.

    >>> natural_order(["ch10", "ch2", "ch1", "ch2"])
    ['ch1', 'ch2', 'ch10']
    """
    return sorted(set(channels), key=channel_sort_key)


@dataclass(frozen=True)
class ChannelChoice:
    """The recipe channels chosen for an experiment, and why (one line)."""

    nuclei: str
    cells: str
    reason: str

    @property
    def channels(self) -> dict[str, str]:
        """The recipe's ``channels``: ``{"nuclei": …, "cells": …}``."""
        return {"nuclei": self.nuclei, "cells": self.cells}


def default_channels(found: Iterable[str]) -> ChannelChoice | None:
    """Nuclei and cells channels for an experiment with channels ``found`` (see the
    module docstring); ``None`` when it has none.

    >>> default_channels(["Cy3", "DAPI", "FITC"]).channels
    {'nuclei': 'DAPI', 'cells': 'Cy3'}
    >>> default_channels(["ch2", "ch1"]).reason
    'nuclei channel ch1: the first (none named after a nuclear stain)'
    """
    ordered = natural_order(found)
    if not ordered:
        return None
    stains = [name for name in ordered if NUCLEAR_STAIN.search(name)]
    if len(stains) == 1:
        nuclei = stains[0]
        reason = f"nuclei channel {nuclei}: the one named after a nuclear stain"
    else:
        nuclei = ordered[0]
        why = "none" if not stains else str(len(stains))
        reason = f"nuclei channel {nuclei}: the first ({why} named after a nuclear stain)"
    others = [name for name in ordered if name != nuclei]
    return ChannelChoice(nuclei, others[0] if others else nuclei, reason)


def resolve_channels(
    recipe: Recipe, found: Iterable[str], experiment_id: str
) -> tuple[Recipe, ChannelChoice | None]:
    """``recipe`` with channels that exist among ``found``, and the choice when this
    function made it.

    A recipe whose nuclei channel is found keeps its channels. One with the default
    channels (:data:`~plateseg.contracts.DEFAULT_CHANNELS`, as when it names none) on an
    experiment without their nuclei channel (an Operetta ``ch1``, an IN Cell ``DAPI``)
    gets the experiment's own, by :func:`default_channels`. Any other missing nuclei
    channel is an error: every field would fail. No channels found: unchanged.

    Raises
    ------
    RecipeError
        The recipe's own nuclei channel is not found; the message lists those that are.
    """
    from plateseg.contracts import DEFAULT_CHANNELS

    present = natural_order(found)
    nuclei = recipe.channels["nuclei"]
    if not present or nuclei in present:
        return recipe, None
    choice = default_channels(present)
    if recipe.channels == dict(DEFAULT_CHANNELS) and choice is not None:
        return recipe.model_copy(update={"channels": choice.channels}), choice
    raise RecipeError(
        f"recipe.channels.nuclei: channel {nuclei!r} is in no field of experiment "
        f"{experiment_id!r}; its channels are {', '.join(present)} "
        f'(e.g. "channels": {{"nuclei": "{present[0]}"}})'
    )
