"""The MuJoCo scene, composed in code with `mujoco.MjSpec`: a Franka Panda on a table.

The arm's kinematics, inertias and meshes are the Franka MJCF shipped with `gymnasium_robotics`
(`envs/assets/kitchen_franka/franka_assets`, Apache-2.0, from vikashplus/franka); only the
files are read (the package itself is never imported). On top of them this module sets the
physics the controller needs (gravity compensation, stiff joint servos, no self-collision),
adds the table, the task objects, an exterior camera placed like a DROID side camera, an
optional wrist camera and lights. World frame = robot base frame; the table top is z = 0.

`python -m jepa_ac.envs export-xml --out DIR` writes the composed scenes as MJCF; `envs/README.md`
lists what was changed from the shipped model and why.
"""

from __future__ import annotations

import functools
import importlib.util
import re
from dataclasses import dataclass
from pathlib import Path

import mujoco
import numpy as np

TASKS = ("reach", "push", "pickplace")

ARM_JOINTS = tuple(f"robot:panda0_joint{i}" for i in range(1, 8))
FINGER_JOINTS = ("robot:panda0_finger_joint1", "robot:panda0_finger_joint2")
ARM_ACTUATORS = tuple(f"panda0_joint{i}" for i in range(1, 8))
FINGER_ACTUATORS = ("r_gripper_finger_joint", "l_gripper_finger_joint")
EE_SITE = "end_effector"  # Franka TCP: 0.1034 m past the flange, between the fingers
HAND_BODY = "panda0_link7"
FINGER_OPEN = 0.04  # metres per finger; closedness = 1 - (q1 + q2) / (2 * FINGER_OPEN)

# Vertex-clustering cell for the visual meshes: 134k -> 12k triangles, same look at 256 px
VISUAL_MESH_CELL = 0.012

EXTERIOR_CAMERA = "exterior"
WRIST_CAMERA = "wrist"

# Joint servo gains (N m / rad, N m s / rad); the shipped kp=870/120 with damping 100/10 lags
# by ~0.1 s, too slow to track a 4 Hz end-effector target.
ARM_KP = (3000.0, 3000.0, 3000.0, 3000.0, 800.0, 800.0, 800.0)
ARM_KV = (80.0, 80.0, 80.0, 80.0, 10.0, 10.0, 10.0)
FINGER_KP = 800.0
FINGER_KV = 20.0

# Nominal object geometry (metres)
TABLE_TOP = 0.0
PUSH_BLOCK_HALF = 0.025
PICK_CUBE_HALF = 0.02
TARGET_RADIUS = 0.06
BOWL_RADIUS = 0.075
BOWL_WALL_HEIGHT = 0.035
BOWL_BASE_HALF = 0.004

# Exterior camera views: name -> (position, look-at point), base frame (m).
# "side": to the robot's front-right, looking across the workspace like a DROID side camera. In a push
#   toward +y the hand stands between it and the block and hides the block.
# "front": facing the robot from beyond the table, 30 degrees down; the hand hides an object only when
#   it pushes toward the base (-x). The default: the shipped default model was trained from it.
EXTERIOR_VIEWS = {
    "side": ((1.0, -0.45, 0.45), (0.4, 0.0, 0.18)),
    "front": ((1.2, 0.0, 0.6), (0.45, 0.0, 0.16)),
}
DEFAULT_EXTERIOR_VIEW = "front"
# A view on the hand: the wrist camera (below) as a planning view, e.g. "front+wrist": it moves with the
# TCP and sees how the open fingers sit around an object, which a distant camera sees along one ray.
WRIST_VIEW = "wrist"
VIEWS = (*EXTERIOR_VIEWS, WRIST_VIEW)
VIEW_SEPARATOR = "+"  # "front+side": the exterior image holds both views side by side, in that order
EXTERIOR_FOVY = 58.0

# Wrist camera pose in the TCP frame (x forward, z from the palm toward the fingertips)
TCP_IN_HAND_POS = (0.0, 0.0, 0.21)  # the `end_effector` site in link7
TCP_IN_HAND_EULER = (0.0, 0.0, -0.785398)
WRIST_POS_TCP = (-0.1, 0.0, -0.06)
WRIST_LOOKAT_TCP = (-0.02, 0.0, 0.1)
WRIST_FOVY = 75.0

DEFAULT_RGBA = {
    "table": (0.62, 0.5, 0.38, 1.0),
    "floor": (0.3, 0.32, 0.35, 1.0),
    "block": (0.85, 0.15, 0.12, 1.0),
    "cube": (0.9, 0.75, 0.1, 1.0),
    "target": (0.15, 0.7, 0.25, 1.0),
    "bowl": (0.15, 0.35, 0.85, 1.0),
    "goal_marker": (0.1, 0.9, 0.2, 0.6),
}


@dataclass(frozen=True)
class SceneInfo:
    """What the env needs to know about a compiled scene besides the model itself."""

    task: str
    camera_names: tuple[str, ...]
    object_geoms: tuple[str, ...]  # geoms whose colour may be randomised


def franka_asset_dir() -> Path:
    """Folder of the Franka MJCF and meshes inside the installed gymnasium_robotics (not imported)."""
    spec = importlib.util.find_spec("gymnasium_robotics")
    if spec is None or not spec.submodule_search_locations:
        raise ModuleNotFoundError(
            "gymnasium_robotics is not installed; the Franka meshes come from it: pip install 'jepa_ac[sim]'"
        )
    root = Path(spec.submodule_search_locations[0]) / "envs" / "assets" / "kitchen_franka" / "franka_assets"
    missing = [n for n in ("assets.xml", "chain.xml", "actuator.xml", "meshes") if not (root / n).exists()]
    if missing:
        raise FileNotFoundError(f"Franka assets incomplete in {root}: missing {missing}")
    return root


def _include_body(path: Path) -> str:
    """The inside of a `<mujocoinclude>` file, comments removed."""
    text = re.sub(r"<!--.*?-->", "", path.read_text(), flags=re.S)
    match = re.search(r"<mujocoinclude>(.*)</mujocoinclude>", text, flags=re.S)
    if match is None:
        raise ValueError(f"{path} is not a <mujocoinclude> file")
    return match.group(1)


def franka_spec() -> mujoco.MjSpec:
    """The shipped Franka arm + gripper as an MjSpec (base at the origin), includes spliced in."""
    root = franka_asset_dir()
    assets = _include_body(root / "assets.xml").replace(
        'meshdir="franka_assets/meshes"', f'meshdir="{root / "meshes"}"'
    )
    if str(root / "meshes") not in assets:
        raise ValueError(f"unexpected meshdir in {root / 'assets.xml'}; cannot locate the Franka meshes")
    xml = (
        f'<mujoco model="franka_table">{assets}'
        f"<worldbody>{_include_body(root / 'chain.xml')}</worldbody>"
        f"{_include_body(root / 'actuator.xml')}</mujoco>"
    )
    return mujoco.MjSpec.from_string(xml)


def read_binary_stl(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """A binary STL file -> (vertices [V, 3] float64, faces [F, 3] int32) with identical vertices welded."""
    raw = path.read_bytes()
    if len(raw) < 84:
        raise ValueError(f"{path}: too short for a binary STL ({len(raw)} bytes)")
    count = int(np.frombuffer(raw, dtype="<u4", count=1, offset=80)[0])
    if len(raw) != 84 + 50 * count:
        raise ValueError(f"{path}: not a binary STL (header says {count} triangles, size {len(raw)} bytes)")
    record = np.dtype([("normal", "<f4", 3), ("verts", "<f4", (3, 3)), ("attr", "<u2")])
    tris = np.frombuffer(raw, dtype=record, count=count, offset=84)["verts"]  # [F, 3 corners, 3]
    verts, index = np.unique(tris.reshape(-1, 3), axis=0, return_inverse=True)
    return verts.astype(np.float64), index.reshape(-1, 3).astype(np.int32)


def decimate_mesh(verts: np.ndarray, faces: np.ndarray, cell: float) -> tuple[np.ndarray, np.ndarray]:
    """Vertex clustering: merge vertices sharing a `cell`-sized grid cell, drop collapsed faces.

    [V, 3], [F, 3] -> [V', 3], [F', 3]. Keeps the silhouette to within ~cell; used because the
    shipped Panda visual meshes (~134k triangles) make software rendering 10x slower.
    """
    keys = np.floor(verts / cell).astype(np.int64)
    _, cluster, counts = np.unique(keys, axis=0, return_inverse=True, return_counts=True)
    cluster = cluster.reshape(-1)
    centres = np.zeros((len(counts), 3))
    np.add.at(centres, cluster, verts)
    centres /= counts[:, None]
    new_faces = cluster[faces]  # [F, 3]
    keep = (new_faces[:, 0] != new_faces[:, 1]) & (new_faces[:, 1] != new_faces[:, 2]) & (
        new_faces[:, 0] != new_faces[:, 2]
    )
    new_faces = new_faces[keep]
    # drop duplicate triangles (same corners, same winding up to rotation)
    rolled = np.stack([np.roll(new_faces, -k, axis=1) for k in range(3)])  # [3, F, 3]
    canonical = rolled[np.argmin(rolled[:, :, 0], axis=0), np.arange(len(new_faces))]
    new_faces = np.unique(canonical, axis=0)
    used, remap = np.unique(new_faces, return_inverse=True)
    return centres[used], remap.reshape(-1, 3).astype(np.int32)


@functools.lru_cache(maxsize=32)
def _decimated_stl(path: Path, cell: float) -> tuple[np.ndarray, np.ndarray] | None:
    verts, faces = read_binary_stl(path)
    if len(faces) < 2000:
        return None
    return decimate_mesh(verts, faces, cell)


def _decimate_visual_meshes(spec: mujoco.MjSpec, cell: float) -> None:
    """Replace each large visual mesh file by its decimated vertices/faces (same frame and scale)."""
    meshdir = Path(spec.meshdir)
    for mesh in spec.meshes:
        if not mesh.name.endswith("_viz") or not mesh.file.startswith("visual/"):
            continue
        decimated = _decimated_stl(meshdir / mesh.file, cell)
        if decimated is None:
            continue
        verts, faces = decimated
        mesh.file = ""
        mesh.uservert = verts.reshape(-1).tolist()
        mesh.userface = faces.reshape(-1).tolist()


def look_at_quat(pos, target, up=(0.0, 0.0, 1.0)) -> np.ndarray:
    """MuJoCo camera quaternion (w, x, y, z) at `pos` looking at `target`, image up ~ `up`."""
    forward = np.asarray(target, float) - np.asarray(pos, float)
    forward /= np.linalg.norm(forward)
    right = np.cross(forward, np.asarray(up, float))
    right /= np.linalg.norm(right)
    up = np.cross(right, forward)
    mat = np.stack([right, up, -forward], axis=1)  # camera x, y, z (looks along -z) as columns
    quat = np.zeros(4)
    mujoco.mju_mat2Quat(quat, mat.reshape(-1))
    return quat


def _set_position_gains(actuator, kp: float, kv: float) -> None:
    """PD position servo: force = kp * (ctrl - q) - kv * qdot (what `set_to_position` does in mujoco >= 3.3.3)."""
    gain = np.zeros(len(actuator.gainprm))
    bias = np.zeros(len(actuator.biasprm))
    gain[0], bias[1], bias[2] = kp, -kp, -kv
    actuator.gaintype = mujoco.mjtGain.mjGAIN_FIXED
    actuator.biastype = mujoco.mjtBias.mjBIAS_AFFINE
    actuator.gainprm, actuator.biasprm = gain.tolist(), bias.tolist()


def _tune_robot(spec: mujoco.MjSpec) -> None:
    """Controller-friendly physics for the shipped arm (gravity compensation, servo gains, contacts)."""
    for body in spec.bodies:
        if body.name.startswith("panda0_"):
            body.gravcomp = 1.0
    for name in ARM_JOINTS + FINGER_JOINTS:
        joint = spec.joint(name)
        # damping lives in the servo (kv) so it does not fight the commanded motion; mujoco 4
        # made joint damping a 3-vector (polynomial), mujoco 3 has a scalar
        joint.damping = np.zeros_like(np.asarray(joint.damping, dtype=float)).tolist() if np.ndim(
            joint.damping) else 0.0
        joint.armature = 0.1 if name in ARM_JOINTS else 0.01
    for name, kp, kv in zip(ARM_ACTUATORS + FINGER_ACTUATORS, ARM_KP + (FINGER_KP,) * 2, ARM_KV + (FINGER_KV,) * 2):
        _set_position_gains(spec.actuator(name), kp, kv)
    for name in FINGER_ACTUATORS:
        spec.actuator(name).forcerange = [-40.0, 40.0]  # the Franka hand's grasp force is 70 N in all
    spec.site(EE_SITE).group = 5  # never drawn
    for geom in spec.geoms:
        if geom.parent.name.startswith("panda0_") and geom.contype == 1 and geom.conaffinity == 1:
            # link collision meshes: collide with the world and objects, not with each other
            geom.contype, geom.conaffinity = 2, 1
        if geom.parent.name in ("panda0_leftfinger", "panda0_rightfinger") and geom.contype == 1:
            geom.friction = [1.5, 0.02, 0.0001]
            geom.condim = 4
        if geom.contype == 0 and geom.conaffinity == 0 and geom.parent.name in (
            "panda0_leftfinger", "panda0_rightfinger", "panda0_link7"
        ):
            geom.rgba = [0.22, 0.22, 0.24, 1.0]  # dark hand and fingers, like the real Franka hand


def _add_environment(spec: mujoco.MjSpec, image_size: int) -> None:
    """Table, floor, back wall, lights, rendering quality."""
    spec.option.timestep = 0.002
    spec.option.noslip_iterations = 0
    spec.option.cone = mujoco.mjtCone.mjCONE_ELLIPTIC
    spec.option.impratio = 10.0
    spec.visual.global_.offwidth = max(640, image_size)
    spec.visual.global_.offheight = max(640, image_size)
    spec.visual.quality.shadowsize = 512  # 1024 costs ~50% more render time for little visible gain
    spec.visual.quality.offsamples = 0  # multisampling costs ~30x on software (llvmpipe) rendering
    spec.visual.headlight.ambient = [0.25, 0.25, 0.25]
    spec.visual.headlight.diffuse = [0.35, 0.35, 0.35]
    spec.visual.headlight.specular = [0.05, 0.05, 0.05]
    spec.stat.center = [0.4, 0.0, 0.2]
    spec.stat.extent = 1.2

    spec.add_texture(name="floor_tex", type=mujoco.mjtTexture.mjTEXTURE_2D,
                     builtin=mujoco.mjtBuiltin.mjBUILTIN_CHECKER, width=256, height=256,
                     rgb1=[0.32, 0.33, 0.36], rgb2=[0.27, 0.28, 0.31])
    floor_mat = spec.add_material(name="floor_mat", texrepeat=[6, 6], reflectance=0.0)
    floor_mat.textures[mujoco.mjtTextureRole.mjTEXROLE_RGB] = "floor_tex"
    spec.add_texture(name="sky", type=mujoco.mjtTexture.mjTEXTURE_SKYBOX,
                     builtin=mujoco.mjtBuiltin.mjBUILTIN_GRADIENT, width=64, height=64,
                     rgb1=[0.75, 0.78, 0.82], rgb2=[0.45, 0.47, 0.5])

    world = spec.worldbody
    box, plane = mujoco.mjtGeom.mjGEOM_BOX, mujoco.mjtGeom.mjGEOM_PLANE
    world.add_geom(name="floor", type=plane, size=[4.0, 4.0, 0.1], pos=[0.0, 0.0, -0.76],
                   material="floor_mat", rgba=[1, 1, 1, 1])
    world.add_geom(name="wall", type=box, size=[0.02, 2.5, 1.2], pos=[-1.1, 0.0, 0.3],
                   rgba=[0.82, 0.82, 0.8, 1.0], contype=0, conaffinity=0)
    world.add_geom(name="table", type=box, size=[0.62, 0.7, 0.025], pos=[0.38, 0.0, TABLE_TOP - 0.025],
                   rgba=list(DEFAULT_RGBA["table"]), friction=[0.6, 0.005, 0.0001])
    for i, (x, y) in enumerate([(-0.2, -0.64), (-0.2, 0.64), (0.96, -0.64), (0.96, 0.64)]):
        world.add_geom(name=f"table_leg{i}", type=box, size=[0.025, 0.025, 0.365], pos=[x, y, -0.415],
                       rgba=[0.35, 0.3, 0.25, 1.0], contype=0, conaffinity=0)
    world.add_geom(name="robot_plate", type=box, size=[0.12, 0.12, 0.004], pos=[0.0, 0.0, 0.004],
                   rgba=[0.2, 0.2, 0.22, 1.0], contype=0, conaffinity=0)

    world.add_light(name="key", pos=[0.9, -0.9, 2.0], dir=[-0.35, 0.45, -1.0], castshadow=True,
                    diffuse=[0.75, 0.75, 0.72], specular=[0.15, 0.15, 0.15], cutoff=45, exponent=2)
    world.add_light(name="fill", pos=[0.2, 1.2, 1.6], dir=[0.1, -0.6, -1.0], castshadow=False,
                    diffuse=[0.35, 0.36, 0.4], specular=[0.0, 0.0, 0.0], cutoff=70, exponent=1)


def parse_views(exterior_view: str) -> tuple[str, ...]:
    """An exterior view setting -> its view names: "front" -> ("front",), "front+side" -> ("front", "side")."""
    views = tuple(exterior_view.split(VIEW_SEPARATOR)) if isinstance(exterior_view, str) else ()
    unknown = [v for v in views if v not in VIEWS]
    if not views or unknown or len(set(views)) != len(views):
        raise ValueError(f"unknown exterior view {exterior_view!r}; expected one of {VIEWS}, or "
                         f"several joined by {VIEW_SEPARATOR!r} (e.g. 'front+side'), each once")
    return views


def exterior_camera(view_index: int, view: str) -> str:
    """The MuJoCo camera of the `view_index`-th exterior view: the first is EXTERIOR_CAMERA."""
    return EXTERIOR_CAMERA if view_index == 0 else f"{EXTERIOR_CAMERA}_{view}"


def _add_cameras(spec: mujoco.MjSpec, wrist_camera: bool, exterior_view: str) -> tuple[str, ...]:
    for i, view in enumerate(parse_views(exterior_view)):
        if view == WRIST_VIEW:
            _add_wrist_camera(spec, exterior_camera(i, view))
            continue
        pos, lookat = EXTERIOR_VIEWS[view]
        spec.worldbody.add_camera(name=exterior_camera(i, view), pos=list(pos),
                                  quat=list(look_at_quat(pos, lookat)), fovy=EXTERIOR_FOVY)
    if not wrist_camera:
        return (EXTERIOR_CAMERA,)
    _add_wrist_camera(spec, WRIST_CAMERA)
    return (EXTERIOR_CAMERA, WRIST_CAMERA)


def _add_wrist_camera(spec: mujoco.MjSpec, name: str) -> None:
    """On the hand, behind the fingers, looking down past the fingertips (like DROID's wrist
    camera). Placed in the TCP frame (x forward, z along the fingers), converted to link7."""
    site_quat = np.zeros(4)
    mujoco.mju_euler2Quat(site_quat, np.array(TCP_IN_HAND_EULER), "xyz")
    cam_pos_tcp = np.array(WRIST_POS_TCP)
    cam_quat_tcp = look_at_quat(cam_pos_tcp, WRIST_LOOKAT_TCP, up=(-1.0, 0.0, 0.0))
    pos, quat = np.zeros(3), np.zeros(4)
    mujoco.mju_rotVecQuat(pos, cam_pos_tcp, site_quat)
    mujoco.mju_mulQuat(quat, site_quat, cam_quat_tcp)
    spec.body(HAND_BODY).add_camera(name=name, pos=list(pos + np.array(TCP_IN_HAND_POS)), quat=list(quat),
                                    fovy=WRIST_FOVY)


def _add_box_object(spec: mujoco.MjSpec, name: str, half: float, mass: float, friction) -> None:
    body = spec.worldbody.add_body(name=name, pos=[0.5, 0.0, TABLE_TOP + half])
    body.add_freejoint(name=f"{name}_joint")
    body.add_geom(name=name, type=mujoco.mjtGeom.mjGEOM_BOX, size=[half, half, half], mass=mass,
                  rgba=list(DEFAULT_RGBA[name]), friction=list(friction), condim=4)


def _add_bowl(spec: mujoco.MjSpec, segments: int = 20) -> None:
    """A static shallow bowl: a disc and a ring of wall segments (box geoms), all one body."""
    bowl = spec.worldbody.add_body(name="bowl", pos=[0.5, 0.2, TABLE_TOP])
    rgba = list(DEFAULT_RGBA["bowl"])
    bowl.add_geom(name="bowl", type=mujoco.mjtGeom.mjGEOM_CYLINDER, size=[BOWL_RADIUS, BOWL_BASE_HALF, 0],
                  pos=[0, 0, BOWL_BASE_HALF], rgba=rgba)
    half_len = BOWL_RADIUS * np.tan(np.pi / segments) + 0.002
    for i in range(segments):
        angle = 2 * np.pi * i / segments
        bowl.add_geom(name=f"bowl_wall{i}", type=mujoco.mjtGeom.mjGEOM_BOX,
                      size=[0.004, half_len, BOWL_WALL_HEIGHT / 2],
                      pos=[BOWL_RADIUS * np.cos(angle), BOWL_RADIUS * np.sin(angle), BOWL_WALL_HEIGHT / 2],
                      quat=[np.cos(angle / 2), 0, 0, np.sin(angle / 2)], rgba=rgba)


def build_spec(task: str, image_size: int = 256, wrist_camera: bool = False,
               exterior_view: str = DEFAULT_EXTERIOR_VIEW) -> tuple[mujoco.MjSpec, SceneInfo]:
    """The full scene for `task` (one of TASKS) as an MjSpec, plus what the env needs to know."""
    if task not in TASKS:
        raise ValueError(f"unknown task {task!r}; expected one of {TASKS}")
    parse_views(exterior_view)
    spec = franka_spec()
    spec.modelname = f"franka_{task}"
    _decimate_visual_meshes(spec, VISUAL_MESH_CELL)
    _tune_robot(spec)
    _add_environment(spec, image_size)
    cameras = _add_cameras(spec, wrist_camera, exterior_view)
    objects: tuple[str, ...] = ()
    if task == "reach":
        spec.worldbody.add_site(name="goal_marker", type=mujoco.mjtGeom.mjGEOM_SPHERE, size=[0.02, 0, 0],
                                pos=[0.5, 0.0, 0.2], rgba=list(DEFAULT_RGBA["goal_marker"]), group=4)
    elif task == "push":
        _add_box_object(spec, "block", PUSH_BLOCK_HALF, mass=0.2, friction=(0.5, 0.005, 0.0001))
        spec.worldbody.add_geom(name="target", type=mujoco.mjtGeom.mjGEOM_CYLINDER,
                                size=[TARGET_RADIUS, 0.0008, 0], pos=[0.5, 0.15, TABLE_TOP + 0.0008],
                                rgba=list(DEFAULT_RGBA["target"]), contype=0, conaffinity=0)
        objects = ("block", "target")
    else:
        _add_box_object(spec, "cube", PICK_CUBE_HALF, mass=0.05, friction=(1.2, 0.01, 0.0001))
        _add_bowl(spec)
        objects = ("cube", "bowl")
    return spec, SceneInfo(task=task, camera_names=cameras, object_geoms=objects)
