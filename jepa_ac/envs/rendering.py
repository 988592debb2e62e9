"""Headless OpenGL selection for MuJoCo rendering.

MuJoCo (and PyOpenGL) read `MUJOCO_GL` / `PYOPENGL_PLATFORM` once, when first imported, so the
choice is made by `select_gl_backend()` before `import mujoco`; `jepa_ac.envs` calls it on
import. A user's own `MUJOCO_GL` is always kept. Otherwise EGL is used when libEGL is present,
OSMesa when only libOSMesa is; `make_renderer` turns a failed GL context into one clear error.
"""

from __future__ import annotations

import ctypes.util
import os
import sys

GL_BACKENDS = ("egl", "osmesa")
_INSTALL_HINT = (
    "Headless rendering needs EGL (libEGL with a Mesa or NVIDIA driver; Debian: "
    "`apt-get install libegl1 libgl1-mesa-dri`) or OSMesa (`apt-get install libosmesa6`); set "
    "MUJOCO_GL=egl or MUJOCO_GL=osmesa before anything imports mujoco."
)


def select_gl_backend() -> str:
    """Choose `MUJOCO_GL` (egl, else osmesa) unless already set or mujoco already imported; returns it."""
    if "MUJOCO_GL" in os.environ:
        return os.environ["MUJOCO_GL"]
    if "mujoco" in sys.modules:
        return "<chosen by mujoco>"  # too late to choose; mujoco picked its own default
    backend = "egl"
    if ctypes.util.find_library("EGL") is None and ctypes.util.find_library("OSMesa") is not None:
        backend = "osmesa"
    os.environ["MUJOCO_GL"] = backend
    os.environ.setdefault("PYOPENGL_PLATFORM", backend)
    return backend


def make_renderer(model, height: int, width: int):
    """A `mujoco.Renderer` [height, width]; a `RuntimeError` saying what to install if GL fails."""
    import mujoco

    try:
        return mujoco.Renderer(model, height=height, width=width)
    except ValueError:
        raise  # a size beyond the offscreen buffer: mujoco's own message is precise
    except Exception as err:  # noqa: BLE001 - every GL/driver failure gets the same advice
        backend = os.environ.get("MUJOCO_GL", "<unset>")
        raise RuntimeError(
            f"MuJoCo could not create an offscreen OpenGL context with MUJOCO_GL={backend}: "
            f"{type(err).__name__}: {err}. {_INSTALL_HINT}"
        ) from err
