# Copyright 2026 ccl_perception maintainers
#
# Licensed under the Apache License, Version 2.0 (the "License");
# you may not use this file except in compliance with the License.
# You may obtain a copy of the License at
#
#     http://www.apache.org/licenses/LICENSE-2.0
#
# Unless required by applicable law or agreed to in writing, software
# distributed under the License is distributed on an "AS IS" BASIS,
# WITHOUT WARRANTIES OR CONDITIONS OF ANY KIND, either express or implied.
# See the License for the specific language governing permissions and
# limitations under the License.

"""
Pinhole camera for the pybullet scenes: intrinsics, pose, projection and pybullet matrices.

Conventions (docs/ARCHITECTURE.md):

- Pixel coordinates ``(x, y)`` = (column, row), pixel centres at integer values, so the
  image spans ``[-0.5, W-0.5] x [-0.5, H-0.5]`` and the principal point of a centred
  camera is ``((W-1)/2, (H-1)/2)``.
- The pose is ``world_from_camera`` (4x4, metres) of the OpenCV optical frame:
  x right, y down, z forward (out of the lens). World frame: z up.
- Depth is true z-depth in metres along the optical axis (not the distance to the eye).

The OpenGL projection handed to pybullet is built from ``K`` so that a pybullet render and
:meth:`Camera.project` agree to the pixel centre (checked in test/test_sim_render.py).
"""
from __future__ import annotations

from dataclasses import dataclass
import math

import numpy as np

# OpenCV optical frame -> OpenGL camera frame (x right, y up, z backward).
_CV_TO_GL = np.diag([1.0, -1.0, -1.0, 1.0])


def intrinsics_from_fov(width: int, height: int, fov_y_deg: float) -> np.ndarray:
    """
    3x3 ``K`` of a centred pinhole camera with square pixels.

    Args:
        width: image width in pixels.
        height: image height in pixels.
        fov_y_deg: vertical field of view in degrees (edge to edge of the image).
    """
    if width <= 0 or height <= 0:
        raise ValueError(f'image size must be positive, got {width}x{height}')
    if not 0.0 < fov_y_deg < 180.0:
        raise ValueError(f'fov_y_deg must be in (0, 180), got {fov_y_deg}')
    f = 0.5 * height / math.tan(math.radians(fov_y_deg) / 2.0)
    return np.array([[f, 0.0, (width - 1) / 2.0], [0.0, f, (height - 1) / 2.0], [0.0, 0.0, 1.0]])


def look_at(eye, target, up=(0.0, 0.0, 1.0)) -> np.ndarray:
    """
    ``world_from_camera`` (4x4) of an OpenCV camera at ``eye`` looking at ``target``.

    The image's "up" (-y) points as close as possible to ``up``; for a camera looking straight
    down (``up`` parallel to the view direction) world +x becomes the image's up direction.
    """
    eye = np.asarray(eye, dtype=float)
    z = np.asarray(target, dtype=float) - eye
    if np.linalg.norm(z) < 1e-9:
        raise ValueError('look_at: eye and target coincide')
    z /= np.linalg.norm(z)
    up = np.asarray(up, dtype=float)
    if np.linalg.norm(np.cross(z, up)) < 1e-6:
        up = np.array([1.0, 0.0, 0.0])
    x = np.cross(z, up)  # y = down = -up projected, so x = y cross z = z cross up
    x /= np.linalg.norm(x)
    y = np.cross(z, x)
    pose = np.eye(4)
    pose[:3, 0], pose[:3, 1], pose[:3, 2], pose[:3, 3] = x, y, z, eye
    return pose


# Intel RealSense D435 colour stream, 640x480 (nominal factory intrinsics; vertical FOV 42.6 deg,
# horizontal 55 deg at this aspect). Scaled to other sizes by :func:`d435_intrinsics`.
D435_COLOR = {'width': 640, 'height': 480, 'fx': 615.0, 'fy': 615.0, 'cx': 319.5, 'cy': 239.5}


def d435_intrinsics(width: int = 640, height: int = 480) -> np.ndarray:
    """
    3x3 ``K`` of the D435 colour camera scaled to ``width x height`` (same 4:3 field of view).

    Scaling keeps the pixel-centre convention: ``c' = (c + 0.5) * s - 0.5``.
    """
    if width <= 0 or height <= 0:
        raise ValueError(f'image size must be positive, got {width}x{height}')
    sx, sy = width / D435_COLOR['width'], height / D435_COLOR['height']
    return np.array([[D435_COLOR['fx'] * sx, 0.0, (D435_COLOR['cx'] + 0.5) * sx - 0.5],
                     [0.0, D435_COLOR['fy'] * sy, (D435_COLOR['cy'] + 0.5) * sy - 0.5],
                     [0.0, 0.0, 1.0]])


@dataclass
class Camera:
    """
    Pinhole camera: ``K`` (3x3, pixels), ``world_from_camera`` (4x4, OpenCV optical frame).

    ``near`` / ``far`` (metres) are the clipping planes used for rendering and for converting
    pybullet's non-linear depth buffer to metres.
    """

    K: np.ndarray
    world_from_camera: np.ndarray
    width: int
    height: int
    near: float = 0.02
    far: float = 5.0

    def __post_init__(self):
        self.K = np.asarray(self.K, dtype=float).reshape(3, 3)
        self.world_from_camera = np.asarray(self.world_from_camera, dtype=float).reshape(4, 4)
        self.width, self.height = int(self.width), int(self.height)
        if not 0 < self.near < self.far:
            raise ValueError(f'need 0 < near < far, got near={self.near} far={self.far}')

    @classmethod
    def looking_at(cls, eye, target, width: int, height: int, fov_y_deg: float = 50.0,
                   up=(0.0, 0.0, 1.0), near: float = 0.02, far: float = 5.0) -> 'Camera':
        """Centred camera at ``eye`` (m) looking at ``target`` (m) with vertical FOV in degrees."""
        return cls(intrinsics_from_fov(width, height, fov_y_deg), look_at(eye, target, up),
                   width, height, near, far)

    @classmethod
    def d435_looking_at(cls, eye, target, width: int = 640, height: int = 480,
                        up=(0.0, 0.0, 1.0), near: float = 0.02, far: float = 5.0) -> 'Camera':
        """
        Return a RealSense D435 colour camera at ``eye`` looking at ``target``.

        Intrinsics: :func:`d435_intrinsics`.
        """
        return cls(d435_intrinsics(width, height), look_at(
            eye, target, up), width, height, near, far)

    @property
    def fov_y_deg(self) -> float:
        """Vertical field of view in degrees (edge to edge)."""
        return float(np.degrees(2.0 * np.arctan(0.5 * self.height / self.K[1, 1])))

    @property
    def camera_from_world(self) -> np.ndarray:
        """Inverse pose, 4x4."""
        return np.linalg.inv(self.world_from_camera)

    # ------------------------------------------------------------------ pybullet
    def view_matrix(self) -> list:
        """Return pybullet's ``viewMatrix``: OpenGL camera-from-world, 16 floats column-major."""
        return list((_CV_TO_GL @ self.camera_from_world).flatten(order='F'))

    def projection_matrix(self, renderer: str = 'tiny') -> list:
        """
        Return pybullet's ``projectionMatrix`` (16 floats column-major) equivalent to ``K``.

        Derived so that NDC ``x=-1`` / ``+1`` are the left / right image edges
        (pixel ``-0.5`` / ``W-0.5``) and row 0 is the top of the image. OpenGL (``renderer=
        'opengl'``, pybullet's EGL plugin) samples every pixel at its centre, so that matrix
        is exact as is. pybullet's TinyRenderer (``'tiny'``) rasterises at pixel corners, not
        centres (measured: column ``i`` showed ``u = i - 0.5``, row ``r`` showed ``v = r + 0.5``),
        so its matrix is shifted by half a pixel. With the matching matrix, rendered pixel
        ``(i, r)`` shows exactly what :meth:`project` maps to ``(i, r)`` (test/test_sim_render.py
        checks both renderers to 0.1 px).
        """
        if renderer not in ('tiny', 'opengl'):
            raise ValueError(f"renderer must be 'tiny' or 'opengl', got {renderer!r}")
        fx, fy = self.K[0, 0], self.K[1, 1]
        cx, cy = self.K[0, 2], self.K[1, 2]
        if renderer == 'tiny':
            cx, cy = cx - 0.5, cy + 0.5  # TinyRenderer corner sampling
        w, h, n, f = self.width, self.height, self.near, self.far
        proj = np.zeros((4, 4))
        proj[0, 0] = 2.0 * fx / w
        proj[0, 1] = -2.0 * self.K[0, 1] / w
        proj[0, 2] = 1.0 - 2.0 * (cx + 0.5) / w
        proj[1, 1] = 2.0 * fy / h
        proj[1, 2] = 2.0 * (cy + 0.5) / h - 1.0
        proj[2, 2] = -(f + n) / (f - n)
        proj[2, 3] = -2.0 * f * n / (f - n)
        proj[3, 2] = -1.0
        return list(proj.flatten(order='F'))

    def depth_from_buffer(self, buffer: np.ndarray) -> np.ndarray:
        """Convert pybullet's [0, 1] depth buffer to z-depth in metres (float32, NaN = no hit)."""
        buf = np.asarray(buffer, dtype=np.float64)
        depth = self.far * self.near / (self.far - (self.far - self.near) * buf)
        depth[buf >= 1.0] = np.nan
        return depth.astype(np.float32)

    # ---------------------------------------------------------------- geometry
    def project(self, points_world: np.ndarray):
        """
        Project world points (N, 3) in metres to pixels.

        Returns:
            ``(uv (N, 2) float pixels (x, y), z (N,) depth in metres)``; points behind the
            camera get ``z <= 0`` and meaningless ``uv``.
        """
        pts = np.asarray(points_world, dtype=float).reshape(-1, 3)
        cam = pts @ self.camera_from_world[:3, :3].T + self.camera_from_world[:3, 3]
        z = cam[:, 2]
        with np.errstate(divide='ignore', invalid='ignore'):
            uvw = cam @ self.K.T
            uv = uvw[:, :2] / uvw[:, 2:3]
        return uv, z

    def backproject(self, uv: np.ndarray, depth: np.ndarray) -> np.ndarray:
        """Pixels ``(N, 2)`` with z-depths ``(N,)`` (m) to world points ``(N, 3)`` (m)."""
        uv = np.asarray(uv, dtype=float).reshape(-1, 2)
        z = np.asarray(depth, dtype=float).reshape(-1)
        rays = np.concatenate([uv, np.ones((len(uv), 1))], axis=1) @ np.linalg.inv(self.K).T
        cam = rays * z[:, None]
        return cam @ self.world_from_camera[:3, :3].T + self.world_from_camera[:3, 3]

    def in_image(self, uv: np.ndarray) -> np.ndarray:
        """(N,) bool: pixel coordinates inside ``[-0.5, W-0.5) x [-0.5, H-0.5)``."""
        uv = np.asarray(uv, dtype=float).reshape(-1, 2)
        ok = np.isfinite(uv).all(axis=1)
        return ok & (uv[:, 0] >= -0.5) & (uv[:, 0] < self.width - 0.5) & \
            (uv[:, 1] >= -0.5) & (uv[:, 1] < self.height - 0.5)

    def to_dict(self) -> dict:
        """JSON-serialisable description (inverse of :meth:`from_dict`)."""
        return {'K': self.K.tolist(), 'world_from_camera': self.world_from_camera.tolist(),
                'width': self.width, 'height': self.height, 'near': self.near, 'far': self.far}

    @classmethod
    def from_dict(cls, d: dict) -> 'Camera':
        """Build from :meth:`to_dict` output."""
        return cls(np.array(d['K']), np.array(d['world_from_camera']), d['width'], d['height'],
                   d.get('near', 0.02), d.get('far', 5.0))
