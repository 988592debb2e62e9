"""trace.py with the push images of before: sub-goals and goal with the hand turned to face the push.

The env now renders them in the home orientation. This puts the old images back (the turned
orientation passed to the env's image configurations) to compare; everything else is trace.py:

    .venv/bin/python experiments/subgoal_planning/turned_images.py --env push --episodes 20 --threads 1 \
        --planning experiments/subgoal_planning/planning_plan_yaw.json --mpc return_to_best=true --out OUT
"""

import sys

import numpy as np

from jepa_ac.envs import franka_env
from jepa_ac.model.pose import euler_xyz_to_matrix

Push = franka_env.FrankaPushEnv
HOME_SUBGOALS, HOME_GOAL = Push._subgoal_configurations, Push._set_goal_configuration


def turned(env: Push) -> np.ndarray:
    """[3, 3] the hand turned to face the push (its widest side toward the block), as the expert turns it."""
    _, yaw = env.push_pose(env._start_block[:2], env.target_pos)
    return euler_xyz_to_matrix(np.array([0.0, 0.0, yaw])) @ env.home_rot


def use_turned_images() -> None:
    """Patch FrankaPushEnv to render its way-points and goal with the hand turned, as before."""
    Push._subgoal_configurations = lambda self: HOME_SUBGOALS(self, turned(self))
    Push._set_goal_configuration = lambda self, data: HOME_GOAL(self, data, turned(self))


if __name__ == "__main__":
    use_turned_images()
    sys.path.insert(0, "experiments/straight_line_plans")
    import trace as tr  # noqa: E402

    tr.main()
