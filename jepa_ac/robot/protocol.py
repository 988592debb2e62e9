"""The two interfaces the control loop runs against: a `Robot` and a `Policy`.

A `Robot` gives camera frames and states and takes 7-D DROID delta actions. A `Policy` turns an
observation into an action: `jepa_ac.PlanningPolicy` in-process, or `jepa_ac.serving.client.PlannerClient`
talking to `python -m jepa_ac.serve` — both have the same methods.
"""

from __future__ import annotations

from typing import Any, Mapping, Protocol, runtime_checkable

import numpy as np


@runtime_checkable
class Robot(Protocol):
    """A robot or simulator driven by DROID delta actions.

    Optional extras the control loop uses when present: `stop()` (halt motion; called when the
    planner, the link or the safety layer fails) and a `done` attribute (True ends the episode).
    """

    def get_observation(self) -> tuple[np.ndarray, np.ndarray]:
        """(frame uint8 [H, W, 3] RGB, state float [7] = [x, y, z, roll, pitch, yaw, gripper])."""
        ...

    def apply_action(self, action: np.ndarray) -> None:
        """Execute one delta action [7] = [dx, dy, dz, droll, dpitch, dyaw, dgripper]."""
        ...


@runtime_checkable
class Policy(Protocol):
    """`reset()`, `set_goal(image)`, `infer({"image", "state"}) -> {"action", "energy", "timing"}`, `metadata()`."""

    def reset(self) -> None: ...

    def set_goal(self, goal: np.ndarray, gripper: float | None = None) -> None: ...

    def infer(self, obs: Mapping[str, Any]) -> dict[str, Any]: ...

    def metadata(self) -> dict[str, Any]: ...
