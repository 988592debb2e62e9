"""Closed-loop control: the one controller shared by the simulator, the server and the robot."""

from jepa_ac.control.controller import Controller, GoalSchedule, PatienceStop, as_goal_list, check_goal_grippers

__all__ = ["Controller", "GoalSchedule", "PatienceStop", "as_goal_list", "check_goal_grippers"]
