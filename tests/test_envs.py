"""MuJoCo Franka envs: gymnasium API, DROID action semantics, seeding, goal images, scripted experts."""

from __future__ import annotations

import numpy as np
import pytest

gym = pytest.importorskip("gymnasium")
mujoco = pytest.importorskip("mujoco")

import jepa_ac.envs  # noqa: E402  (registers the ids)
from jepa_ac.data.collection import episode_seed  # noqa: E402
from jepa_ac.envs import ENV_IDS, register_envs, scene  # noqa: E402
from jepa_ac.envs.experts import PushExpert, make_expert  # noqa: E402
from jepa_ac.model.pose import apply_action, euler_xyz_to_matrix  # noqa: E402

IDS = list(ENV_IDS)
SMALL = 64  # image size for tests: the env logic does not depend on it


def _make(env_id: str, **kwargs):
    return gym.make(env_id, image_size=kwargs.pop("image_size", SMALL), shadows=False, **kwargs)


def _rotation_angle(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.arccos(np.clip((np.trace(a @ b.T) - 1) / 2, -1, 1)))


def test_register_is_idempotent_and_ids_exist():
    register_envs()
    register_envs()
    for env_id in IDS:
        assert env_id in gym.registry
        assert gym.registry[env_id].max_episode_steps > 0


@pytest.mark.parametrize("env_id", IDS)
def test_check_env(env_id):
    from gymnasium.utils.env_checker import check_env

    env = _make(env_id)
    check_env(env.unwrapped)
    env.close()


def test_check_env_with_wrist_camera():
    from gymnasium.utils.env_checker import check_env

    env = _make("jepa_ac/FrankaPickPlace-v0", wrist_camera=True)
    check_env(env.unwrapped)
    env.close()


def test_observation_info_layout_with_wrist_camera():
    env = _make("jepa_ac/FrankaPickPlace-v0", wrist_camera=True)
    obs, info = env.reset(seed=0)
    assert set(obs) == {"image", "state", "wrist_image"}
    assert obs["image"].shape == obs["wrist_image"].shape == (SMALL, SMALL, 3)
    assert obs["image"].dtype == np.uint8 and obs["state"].dtype == np.float32
    assert obs["image"].std() > 5 and obs["wrist_image"].std() > 5  # a real picture, not a blank frame
    assert not np.array_equal(obs["image"], obs["wrist_image"])
    state = obs["state"]
    np.testing.assert_allclose(state[:6], info["cartesian_position"], atol=1e-5)
    assert state[6] == pytest.approx(info["gripper_position"], abs=1e-6)
    assert 0.0 <= info["gripper_position"] < 0.05  # starts open
    assert info["joint_positions"].shape == (7,)
    assert set(info["camera_extrinsics"]) == {"exterior", "wrist"}
    for extrinsics in info["camera_extrinsics"].values():
        assert extrinsics.shape == (6,)
    for key in ("success", "cube_to_bowl", "cube_height", "ee_to_cube"):
        assert key in info
    base = env.unwrapped
    assert base.task_name == "pickplace" and base.control_hz == 4.0
    assert base.camera_names == ("exterior", "wrist")
    np.testing.assert_array_equal(env.render(), obs["image"])
    env.close()


@pytest.mark.parametrize("view", sorted(scene.EXTERIOR_VIEWS))
def test_exterior_extrinsics_look_at_the_workspace(view):
    """OpenCV convention: the camera's +z (3rd column of R) points from the camera to the table."""
    env = _make("jepa_ac/FrankaReach-v0", exterior_view=view)
    _, info = env.reset(seed=0)
    ext = info["camera_extrinsics"]["exterior"]
    np.testing.assert_allclose(ext[:3], scene.EXTERIOR_VIEWS[view][0])
    forward = euler_xyz_to_matrix(ext[3:6])[:, 2]
    to_workspace = np.array([0.45, 0.0, 0.1]) - ext[:3]
    cos = forward @ to_workspace / np.linalg.norm(to_workspace)
    assert cos > 0.95
    env.close()


def test_front_view_sees_the_block_beside_the_hand_in_a_plus_y_push():
    """In a push toward +y the hand is on the block's -y side: between the side camera and the block,
    beside it seen from the front. The block's visible part at the push's end, as a fraction of its
    visible part at reset, measured by its red pixels (side 0.25, front 0.56 at 128 px)."""
    visible = {}
    for view in ("side", "front"):
        env = _make("jepa_ac/FrankaPush-v0", image_size=128, exterior_view=view)
        obs, _ = env.reset(seed=episode_seed(0, 7))  # evaluation episode 7: the block goes 26 cm toward +y
        push = env.unwrapped.target_pos - env.unwrapped._start_block[:2]
        assert push[1] > 0.2 and abs(push[0]) < 0.1, push
        push_end = env.unwrapped.subgoal_images()[-2]
        red = [int(((im[..., 0] > 150) & (im[..., 1] < 80) & (im[..., 2] < 80)).sum()) for im in (obs["image"], push_end)]
        visible[view] = red[1] / red[0]
        env.close()
    assert visible["front"] > 1.5 * visible["side"], visible


@pytest.mark.parametrize("env_id", ["jepa_ac/FrankaPush-v0", "jepa_ac/FrankaPickPlace-v0"])
def test_seeded_reset_determines_the_episode(env_id):
    env = _make(env_id, randomize_colors=True, randomize_lighting=True, camera_jitter=0.02)
    obs_a, info_a = env.reset(seed=7)
    obs_b, info_b = env.reset(seed=7)
    np.testing.assert_array_equal(obs_a["image"], obs_b["image"])
    np.testing.assert_array_equal(obs_a["state"], obs_b["state"])
    np.testing.assert_array_equal(info_a["camera_extrinsics"]["exterior"], info_b["camera_extrinsics"]["exterior"])
    obs_c, info_c = env.reset(seed=8)
    assert not np.array_equal(obs_a["image"], obs_c["image"])
    assert not np.allclose(info_a["camera_extrinsics"]["exterior"], info_c["camera_extrinsics"]["exterior"])
    env.close()


def test_restore_goes_back_to_a_snapshot_exactly():
    """Try an action, restore, take another: the same as taking the other one directly (the block too)."""
    env = _make("jepa_ac/FrankaPush-v0")
    obs, _ = env.reset(seed=3)
    expert = make_expert(env, noise=0.3, seed=0)
    for _ in range(12):
        obs, *_ = env.step(expert.act(obs))
    u = env.unwrapped
    snap = u.snapshot()
    tried = np.array([0.04, -0.03, -0.02, 0, 0, 0.1, -0.5], np.float32)
    other = np.array([-0.02, 0.05, 0.01, 0, 0, 0, 0.5], np.float32)
    first = [env.step(tried)[0] for _ in range(2)]
    u.restore(snap)
    np.testing.assert_array_equal(env.render(), obs["image"])
    direct = env.step(other)[0]
    u.restore(snap)
    again = [env.step(tried)[0] for _ in range(2)]
    for a, b in zip(first, again):
        np.testing.assert_array_equal(a["image"], b["image"])
        np.testing.assert_array_equal(a["state"], b["state"])
    assert not np.array_equal(direct["state"], first[0]["state"])
    env.reset(seed=3)
    u.restore(snap)
    np.testing.assert_array_equal(env.step(other)[0]["state"], direct["state"])
    env.close()


def test_randomize_objects_off_gives_nominal_layout():
    env = _make("jepa_ac/FrankaPush-v0", randomize_objects=False, joint_noise=0.0)
    _, info_a = env.reset(seed=1)
    _, info_b = env.reset(seed=2)
    assert info_a["block_to_target"] == pytest.approx(info_b["block_to_target"], abs=1e-6)
    np.testing.assert_allclose(info_a["cartesian_position"], info_b["cartesian_position"], atol=1e-6)
    env.close()


def test_translation_action_moves_the_tcp_by_that_much():
    env = _make("jepa_ac/FrankaReach-v0", joint_noise=0.0)
    obs, _ = env.reset(seed=0)
    for axis, delta in ((0, 0.05), (1, -0.04), (2, -0.08), (0, 0.1)):
        action = np.zeros(7, np.float32)
        action[axis] = delta
        before = obs["state"].astype(np.float64)
        obs, _, _, _, info = env.step(action)
        moved = obs["state"][:3] - before[:3]
        assert moved[axis] == pytest.approx(delta, abs=0.005), (axis, delta, moved)
        others = [i for i in range(3) if i != axis]
        assert np.all(np.abs(moved[others]) < 0.005), (axis, moved)
        # the orientation is held
        assert _rotation_angle(euler_xyz_to_matrix(obs["state"][3:6].astype(np.float64)),
                               euler_xyz_to_matrix(before[3:6])) < 0.02
        # the commanded target is apply_action(state, action) (obs state is float32: compare loosely)
        commanded, expected = info["commanded_state"], apply_action(before, action.astype(np.float64))
        np.testing.assert_allclose(commanded[:3], expected[:3], atol=1e-6)
        assert _rotation_angle(euler_xyz_to_matrix(commanded[3:6]), euler_xyz_to_matrix(expected[3:6])) < 1e-5
    env.close()


def test_rotation_action_composes_like_pose_apply_action():
    env = _make("jepa_ac/FrankaReach-v0", joint_noise=0.0)
    obs, _ = env.reset(seed=0)
    order_checked = 0
    for action in ([0, 0, 0, 0, 0, 0.25, 0], [0, 0, 0, 0, -0.15, 0, 0], [0, 0, 0, 0.2, 0, 0, 0],
                   [0, 0, 0, 0.1, -0.15, 0.1, 0]):
        action = np.array(action, np.float32)
        before = obs["state"].astype(np.float64)
        obs, _, _, _, _ = env.step(action)
        expected = apply_action(before, action.astype(np.float64))  # R_next = R_delta @ R_prev
        reached = euler_xyz_to_matrix(obs["state"][3:6].astype(np.float64))
        assert _rotation_angle(reached, euler_xyz_to_matrix(expected[3:6])) < 0.02
        # and not the other composition order R_prev @ R_delta, where the two differ
        wrong = euler_xyz_to_matrix(before[3:6]) @ euler_xyz_to_matrix(action[3:6].astype(np.float64))
        gap = _rotation_angle(euler_xyz_to_matrix(expected[3:6]), wrong)
        if gap > 0.1:
            assert _rotation_angle(reached, wrong) > gap - 0.02
            order_checked += 1
        np.testing.assert_allclose(obs["state"][:3], before[:3], atol=0.006)  # TCP position held
    assert order_checked >= 2
    env.close()


def test_gripper_closes_and_opens():
    env = _make("jepa_ac/FrankaReach-v0")
    obs, _ = env.reset(seed=0)
    assert obs["state"][6] < 0.05
    close = np.array([0, 0, 0, 0, 0, 0, 1.0], np.float32)
    obs, *_ = env.step(close)
    assert obs["state"][6] > 0.9
    obs, *_ = env.step(np.zeros(7, np.float32))  # a zero action keeps it closed
    assert obs["state"][6] > 0.9
    obs, *_ = env.step(-close)
    assert obs["state"][6] < 0.1
    env.close()


def test_targets_are_clipped_to_the_workspace():
    env = _make("jepa_ac/FrankaReach-v0")
    obs, _ = env.reset(seed=0)
    for _ in range(5):  # try to drive the fingers through the table
        obs, *_ = env.step(np.array([0, 0, -0.1, 0, 0, 0, 0], np.float32))
    assert obs["state"][2] > 0.045
    env.close()


def test_bad_inputs_raise_clear_errors():
    env = _make("jepa_ac/FrankaReach-v0")
    with pytest.raises(RuntimeError, match="reset"):
        env.unwrapped.goal_image()
    with pytest.raises(RuntimeError, match="reset"):
        env.unwrapped.step(np.zeros(7))
    env.reset(seed=0)
    with pytest.raises(ValueError, match=r"shape \[7\]"):
        env.step(np.zeros(6))
    with pytest.raises(ValueError, match="finite"):
        env.step(np.full(7, np.nan))
    with pytest.raises(ValueError, match="reset options"):
        env.reset(options={"goal": 1})
    with pytest.raises(ValueError, match="unknown camera"):
        env.unwrapped.goal_image("top")
    with pytest.raises(ValueError, match="image_size"):
        gym.make("jepa_ac/FrankaReach-v0", image_size=8)
    with pytest.raises(ValueError, match="control_hz"):
        gym.make("jepa_ac/FrankaReach-v0", control_hz=0.0)
    for bad in ("top", "front+top", "front+front", "front+"):
        with pytest.raises(ValueError, match=r"exterior_view: unknown exterior view .*expected one of \('side', 'front', 'wrist'\), "
                                             r"or several joined by '\+'"):
            gym.make("jepa_ac/FrankaReach-v0", exterior_view=bad)
    with pytest.raises(ValueError, match="noise"):
        make_expert(env, noise=-1.0)
    env.close()


def _assert_live_simulation_untouched(env, obs, info):
    """Rendering goal or sub-goal pictures (in scratch data) must not move the episode's own state."""
    np.testing.assert_array_equal(env.render(), obs["image"])
    np.testing.assert_allclose(env.unwrapped.state()[:6], info["cartesian_position"])


@pytest.mark.parametrize("env_id", IDS)
def test_goal_image_shows_the_goal_configuration(env_id):
    env = _make(env_id)
    obs, info = env.reset(seed=3)
    base = env.unwrapped
    goal = base.goal_image()
    assert goal.shape == obs["image"].shape and goal.dtype == np.uint8
    assert np.abs(goal.astype(int) - obs["image"].astype(int)).mean() > 1.0
    _assert_live_simulation_untouched(env, obs, info)
    goal_state = base.goal_state()
    if base.task_name == "reach":
        np.testing.assert_allclose(goal_state[:3], base.goal_pos, atol=1e-3)
    elif base.task_name == "pickplace":
        np.testing.assert_allclose(goal_state[:2], base.bowl_pos[:2], atol=1e-3)
    env.close()


def test_push_waypoints_lie_evenly_along_the_push():
    env = _make("jepa_ac/FrankaPush-v0", push_waypoints=3)
    env.reset(seed=5)
    base = env.unwrapped
    images, states = base.subgoal_images(), base.subgoal_states()
    assert len(images) == len(states) == 6  # above, down, 3 along the push, the goal
    along = states[2:5, :2]  # [3, 2] TCP xy; the last is the push's end
    direction = (base.target_pos - base._start_block[:2]) / np.linalg.norm(base.target_pos - base._start_block[:2])
    steps = np.diff(np.concatenate([states[1:2, :2] + direction * PushExpert.PRE_PUSH_GAP, along]), axis=0)  # [3, 2]
    np.testing.assert_allclose(steps, np.broadcast_to(steps[0], steps.shape), atol=2e-3)  # even, on the line
    np.testing.assert_allclose(steps[0] / np.linalg.norm(steps[0]), direction, atol=1e-3)
    assert np.all(states[2:5, 2] < 0.07)
    for a, b in zip(images[1:5], images[2:5]):  # the block moves along with the hand from image to image
        assert np.abs(a.astype(int) - b.astype(int)).mean() > 0.05
    with pytest.raises(ValueError, match="push_waypoints"):
        _make("jepa_ac/FrankaPush-v0", push_waypoints=0)
    env.close()


def test_descent_waypoints_lie_straight_down_to_the_grasp_and_planning_settings_reach_the_env():
    """env.kwargs in the planning settings become the env's keywords: descent_waypoints=2 puts two open
    way-points evenly between "above the cube" and "around it"; the rest of the sequence is unchanged."""
    from jepa_ac.control.closed_loop import make_env
    from jepa_ac.planning.defaults import EnvOptions

    plain = _make("jepa_ac/FrankaPickPlace-v0")
    env = make_env("jepa_ac/FrankaPickPlace-v0", EnvOptions(image_size=SMALL, kwargs={"descent_waypoints": 2}))
    for e in (plain, env):
        e.reset(seed=6)
    states, before = env.unwrapped.subgoal_states(), plain.unwrapped.subgoal_states()  # [K, 7]
    assert len(states) == len(before) + 2 == 8
    np.testing.assert_allclose(states[[0, 3, 4, 5, 6, 7]], before, atol=1e-6)
    np.testing.assert_allclose(np.diff(states[:4, 2]), np.full(3, (states[3, 2] - states[0, 2]) / 3), atol=1e-4)
    np.testing.assert_allclose(states[:4, :2], np.broadcast_to(states[0, :2], (4, 2)), atol=1e-4)
    assert np.all(states[:4, 6] < 0.05)  # open all the way down
    with pytest.raises(ValueError, match="descent_waypoints"):
        _make("jepa_ac/FrankaPickPlace-v0", descent_waypoints=-1)
    with pytest.raises(ValueError, match="set \\['exterior_view'\\] as env options of their own"):
        EnvOptions(kwargs={"exterior_view": "side"})
    with pytest.raises(ValueError, match="keyword arguments of the Franka envs; an env behind an adapter"):
        make_env("my_hooks:Env-v0", EnvOptions(kwargs={"descent_waypoints": 1}), adapter=object())
    for e in (plain, env):
        e.close()


def _move_block(env, xy, yaw=0.0):
    base = env.unwrapped
    base._place_free_body(base.data, "block", [*xy, base._start_block[2]], yaw)
    mujoco.mj_forward(base.model, base.data)


def test_a_new_push_round_starts_from_where_the_block_lies():
    env = _make("jepa_ac/FrankaPush-v0")
    with pytest.raises(RuntimeError, match="reset"):
        env.unwrapped.new_subgoal_round()
    env.reset(seed=3)
    base = env.unwrapped
    first_states, first_goal = base.subgoal_states(), base.goal_state()
    assert base.new_subgoal_round()  # the block has not moved: the same round again
    np.testing.assert_allclose(base.subgoal_states(), first_states, atol=1e-6)
    moved = base.target_pos + np.array([-0.06, 0.03])  # pushed short and off the line
    _move_block(env, moved, yaw=0.3)
    assert base.new_subgoal_round()
    states = base.subgoal_states()
    direction = (base.target_pos - moved) / np.linalg.norm(base.target_pos - moved)
    np.testing.assert_allclose(states[0, :2], PushExpert.pre_push_point(moved, direction), atol=2e-3)
    np.testing.assert_allclose(states[2, :2], base.target_pos - direction * PushExpert.CONTACT, atol=2e-3)
    assert np.linalg.norm(base.goal_state()[:2] - first_goal[:2]) > 0.01  # the goal's arm follows the new line
    block_at_goal, _ = base.object_pose("block", base._goal_data_ready())
    np.testing.assert_allclose(block_at_goal[:2], base.target_pos, atol=1e-6)
    for xy, why in ((base.target_pos + 0.012, "1.7 cm away: nothing left to push"),
                    (base.target_pos + np.array([0.3, 0.2]), "the new pre-push point is out of the arm's reach")):
        _move_block(env, xy)
        assert not base.new_subgoal_round(), why
        np.testing.assert_allclose(base.subgoal_states(), states, atol=1e-6)  # the last round's way-points stay
    env.close()
    reach = _make("jepa_ac/FrankaReach-v0")
    reach.reset(seed=3)
    assert not reach.unwrapped.new_subgoal_round()  # the goal does not depend on where things moved
    reach.close()


def test_a_new_pick_round_starts_from_where_the_cube_lies():
    env = _make("jepa_ac/FrankaPickPlace-v0")
    env.reset(seed=3)
    base = env.unwrapped
    first = base.subgoal_states()
    assert base.new_subgoal_round()
    np.testing.assert_allclose(base.subgoal_states(), first, atol=1e-6)
    z = base._start_cube[2]

    def put(xyz):
        base._place_free_body(base.data, "cube", xyz, 0.2)
        mujoco.mj_forward(base.model, base.data)

    nudged = base._start_cube[:2] + np.array([0.04, -0.03])
    put([*nudged, z])
    assert base.new_subgoal_round()
    states = base.subgoal_states()
    np.testing.assert_allclose(states[:4, :2], np.broadcast_to(nudged, (4, 2)), atol=2e-3)  # above, around, closed, lifted
    np.testing.assert_allclose(states[4, :2], base.bowl_pos[:2], atol=2e-3)  # then over the bowl as before
    for where in ([*nudged, z + 0.05], [*base.bowl_pos[:2], z + 0.01]):  # held up, or in the bowl
        put(where)
        assert not base.new_subgoal_round()
        np.testing.assert_allclose(base.subgoal_states(), states, atol=1e-6)
    env.close()


@pytest.mark.parametrize("env_id", IDS)
def test_subgoal_images_follow_the_experts_way_points(env_id):
    env = _make(env_id)
    obs, info = env.reset(seed=5)
    base = env.unwrapped
    images, states = base.subgoal_images(), base.subgoal_states()
    expected = {"reach": 1, "push": 4, "pickplace": 6}[base.task_name]
    assert len(images) == len(states) == expected
    np.testing.assert_array_equal(images[-1], base.goal_image())  # the last sub-goal is the goal
    np.testing.assert_allclose(states[-1], base.goal_state())
    assert all(im.shape == obs["image"].shape and im.dtype == np.uint8 for im in images)
    for a, b in zip(images, images[1:]):  # every way-point is a different picture
        assert np.abs(a.astype(int) - b.astype(int)).mean() > 0.05
    _assert_live_simulation_untouched(env, obs, info)
    # every way-point keeps the home orientation, so a planner that holds the rotation can reach it
    np.testing.assert_allclose(euler_xyz_to_matrix(states[:, 3:6]), np.broadcast_to(base.home_rot, (expected, 3, 3)),
                               atol=2e-3)
    if base.task_name == "push":
        block, _ = base.object_pose("block")
        # above and at the pre-push point (behind the block, away from the target), then at the push's end
        np.testing.assert_allclose(states[0, :2], states[1, :2], atol=1e-3)
        assert states[0, 2] > 0.12 and states[1, 2] < 0.07 and states[2, 2] < 0.07
        to_target = base.target_pos - block[:2]
        assert (states[1, :2] - block[:2]) @ to_target < 0 < (states[2, :2] - block[:2]) @ to_target
        assert np.all(states[:, 6] > 0.99)  # fingers closed for pushing
    if base.task_name == "pickplace":
        cube, _ = base.object_pose("cube")
        np.testing.assert_allclose(states[:4, :2], np.tile(cube[:2], (4, 1)), atol=1e-3)
        assert states[0, 2] > 0.12 and states[1, 2] < 0.07 and states[3, 2] > 0.15
        np.testing.assert_allclose(states[:, 6], [0, 0, 0.5, 0.5, 0.5, 0], atol=1e-3)  # open, closed on the cube
        np.testing.assert_allclose(states[4, :2], base.bowl_pos[:2], atol=1e-3)
    env.close()


def _run_expert(env_id: str, seeds, noise: float = 0.0) -> list[bool]:
    env = _make(env_id)
    results = []
    for seed in seeds:
        obs, info = env.reset(seed=seed)
        expert = make_expert(env, noise=noise, seed=seed)
        done = False
        while not done:
            obs, _, terminated, truncated, info = env.step(expert.act(obs))
            done = terminated or truncated
        results.append(bool(info["success"]))
    env.close()
    return results


@pytest.mark.parametrize("env_id", IDS)
def test_scripted_expert_succeeds_few_episodes(env_id):
    results = _run_expert(env_id, seeds=(100, 101))
    assert all(results), results


@pytest.mark.slow
@pytest.mark.parametrize("env_id", IDS)
def test_scripted_expert_succeeds_90_percent(env_id):
    results = _run_expert(env_id, seeds=range(20))
    assert np.mean(results) >= 0.9, results


@pytest.mark.slow
def test_noisy_expert_still_mostly_succeeds_but_acts_differently():
    env = _make("jepa_ac/FrankaPush-v0")
    obs, _ = env.reset(seed=0)
    clean, noisy = make_expert(env, noise=0.0), make_expert(env, noise=0.2, seed=0)
    assert not np.allclose(clean.act(obs), noisy.act(obs))
    env.close()
    assert np.mean(_run_expert("jepa_ac/FrankaPush-v0", seeds=range(10), noise=0.1)) >= 0.5


def test_offset_grasps_land_beside_the_cube_then_try_again_at_it():
    """grasp_offset: the first descent ends at the drawn offset from the cube (here 4-6 cm), the empty
    grasp is seen and the next approach aims at the cube; turn_to_cube=False keeps the home yaw."""
    env = _make("jepa_ac/FrankaPickPlace-v0")
    obs, _ = env.reset(seed=3)
    expert = make_expert(env, noise=0.0, seed=1, grasp_offset=0.06, turn_to_cube=False)
    assert 0.04 < np.linalg.norm(expert.aim_offset) <= 0.06, expert.aim_offset
    phases, closes = [], []
    for _ in range(60):
        obs, *_ = env.step(expert.act(obs))
        phases.append(expert.phase)
        assert abs(expert.yaw_of(obs["state"])) < 0.05  # the home orientation throughout
        if expert.phase == "close" and expert.phase_steps == 1:
            cube, _ = env.unwrapped.object_pose("cube")
            closes.append(float(np.linalg.norm(obs["state"][:2] - cube[:2])))
    assert len(closes) >= 2 and closes[0] > 0.03 and closes[-1] < 0.015, closes
    assert not expert.aim_offset.any()  # the miss reset the aim to the cube
    with pytest.raises(ValueError, match="takes no option \\['grip'\\]; its options: \\['grasp_offset', 'turn_to_cube'\\]"):
        make_expert(env, grip=1.0)
    with pytest.raises(ValueError, match="the reach expert takes no option \\['grasp_offset'\\]; its options: none"):
        make_expert(_make("jepa_ac/FrankaReach-v0"), grasp_offset=0.05)
    with pytest.raises(ValueError, match="grasp_offset"):
        make_expert(env, grasp_offset=0.5)
    env.close()


def test_the_default_pick_and_place_expert_draws_noise_only():
    """Without grasp_offset the expert's RNG gives only the action noise, so datasets collected before the
    options existed are collected again episode for episode."""
    env = _make("jepa_ac/FrankaPickPlace-v0")
    obs, _ = env.reset(seed=2)
    noisy, clean = make_expert(env, noise=0.3, seed=0), make_expert(env, noise=0.0)
    bound = np.asarray(env.action_space.high, np.float64)
    expected = np.clip(clean.act(obs) + np.random.default_rng(0).normal(0.0, 0.3, 7) * bound, -bound, bound)
    np.testing.assert_allclose(noisy.act(obs), expected.astype(np.float32), atol=1e-6)
    env.close()


def test_make_expert_rejects_other_envs():
    env = gym.make("CartPole-v1")
    with pytest.raises(ValueError, match="no scripted expert"):
        make_expert(env)


def test_gl_failure_gives_an_actionable_error(monkeypatch):
    import mujoco

    from jepa_ac.envs import rendering

    def broken(*args, **kwargs):
        raise mujoco.FatalError("gladLoadGL error")

    monkeypatch.setattr(mujoco, "Renderer", broken)
    with pytest.raises(RuntimeError, match="MUJOCO_GL=.*osmesa"):
        rendering.make_renderer(None, 64, 64)


def test_select_gl_backend_keeps_the_users_choice(monkeypatch):
    from jepa_ac.envs import rendering

    monkeypatch.setenv("MUJOCO_GL", "osmesa")
    assert rendering.select_gl_backend() == "osmesa"


def test_several_views_render_side_by_side_as_each_view_alone():
    """exterior_view="front+side": the image, goal and way-points hold both views, left to right, each
    exactly as a one-view env renders it; the episode itself is the same."""
    envs = {v: _make("jepa_ac/FrankaPush-v0", exterior_view=v) for v in ("front", "side", "front+side")}
    obs = {v: env.reset(seed=5)[0] for v, env in envs.items()}
    both = envs["front+side"]
    assert both.observation_space["image"].shape == (SMALL, 2 * SMALL, 3)
    assert both.observation_space.contains(obs["front+side"])
    for action in (np.array([0.03, -0.02, 0.0, 0, 0, 0, 0.5], np.float32),) * 2:
        obs = {v: env.step(action)[0] for v, env in envs.items()}
    np.testing.assert_array_equal(obs["front+side"]["state"], obs["front"]["state"])
    pictures = {v: [obs[v]["image"], env.unwrapped.goal_image(), *env.unwrapped.subgoal_images()]
                for v, env in envs.items()}
    for joined, front, side in zip(pictures["front+side"], pictures["front"], pictures["side"]):
        np.testing.assert_array_equal(joined, np.concatenate([front, side], axis=1))
    assert not np.array_equal(pictures["front"][0], pictures["side"][0])
    jittered = _make("jepa_ac/FrankaReach-v0", exterior_view="side+front", camera_jitter=0.02,
                     randomize_objects=False, joint_noise=0.0)  # only the cameras differ between seeds
    a, b = (jittered.reset(seed=s)[0]["image"] for s in (1, 2))
    assert a.shape == (SMALL, 2 * SMALL, 3)
    assert not np.array_equal(a[:, :SMALL], b[:, :SMALL]) and not np.array_equal(a[:, SMALL:], b[:, SMALL:])
    for env in (*envs.values(), jittered):
        env.close()


def test_wrist_view_is_the_wrist_camera_riding_on_the_hand():
    """exterior_view="front+wrist": the right half is what the wrist camera records, in every step and
    way-point; camera jitter moves the front camera only (the wrist camera is fixed to the hand)."""
    env = _make("jepa_ac/FrankaPickPlace-v0", exterior_view="front+wrist", wrist_camera=True, camera_jitter=0.02)
    obs, _ = env.reset(seed=4)
    first = obs["image"][:, SMALL:]
    np.testing.assert_array_equal(first, obs["wrist_image"])
    obs, *_ = env.step(np.array([0.05, 0.0, -0.05, 0, 0, 0, 0], np.float32))
    np.testing.assert_array_equal(obs["image"][:, SMALL:], obs["wrist_image"])
    assert not np.array_equal(obs["image"][:, SMALL:], first)  # it moved with the hand
    base = env.unwrapped
    for joined, wrist in zip(base.subgoal_images(), base.subgoal_images(scene.WRIST_CAMERA)):
        np.testing.assert_array_equal(joined[:, SMALL:], wrist)
    cam = base.model.camera(scene.exterior_camera(1, "wrist")).id
    nominal = base.model.cam_pos[cam].copy()
    base.reset(seed=5)
    np.testing.assert_array_equal(base.model.cam_pos[cam], nominal)
    env.close()
