"""Planning: action spec, CEM, the planner and the policy interface."""

from jepa_ac.planning.action_spec import ActionSpec
from jepa_ac.planning.cem import CEMConfig, CEMResult, Sampler, cem, sample_noise, shift_plan
from jepa_ac.planning.planner import CEMPlanner, NonFiniteError, PlanningPolicy, check_state

__all__ = ["ActionSpec", "CEMConfig", "CEMResult", "Sampler", "cem", "sample_noise", "shift_plan", "CEMPlanner",
           "PlanningPolicy", "check_state"]
