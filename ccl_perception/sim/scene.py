"""A pybullet tabletop world: floor, table, textured objects, lights, and camera rendering.

World frame (shared with ``sim/robot.py``): z up, metres. The table top is the plane
``z = TABLE_TOP_Z = 0``; the table spans ``TABLE_X`` x ``TABLE_Y``; objects are arranged in
the workspace rectangle centred at the world origin (half extents ``WORKSPACE_HALF``); the
floor is at ``FLOOR_Z``. A Panda placed at ``(-0.55, 0, 0)`` reaches the whole workspace.

Every pybullet call passes ``physicsClientId``: several worlds can live in one process. Pass
``client=`` to build the scene inside an existing client (the robot engineer's world).

Segmentation: pybullet body unique ids (int32); ``-1`` = no geometry hit (sky). The table and
floor have their own ids (``scene.background_ids``); object ids are in ``scene.bodies``
(name -> id). Objects that are not part of the current arrangement are parked under the
table, hidden from any camera above the table top.
"""
from __future__ import annotations

import os
import shutil
import tempfile
from dataclasses import dataclass

import cv2
import numpy as np
import pybullet as p
import pybullet_data

from ccl_perception.sim import meshes, textures
from ccl_perception.sim.camera import Camera
from ccl_perception.sim.objects import ObjectSpec

TABLE_TOP_Z = 0.0                 # m, height of the table top surface
TABLE_X = (-0.75, 0.6)            # m, table extent along world x
TABLE_Y = (-0.6, 0.6)             # m, table extent along world y
TABLE_THICKNESS = 0.04            # m
FLOOR_Z = -0.75                   # m
WORKSPACE_HALF = (0.17, 0.13)     # m, objects are dropped in [-hx, hx] x [-hy, hy]


@dataclass
class RenderResult:
    """One rendered view.

    Attributes:
        rgb: ``(H, W, 3)`` uint8.
        depth: ``(H, W)`` float32 z-depth in metres, NaN where nothing was hit.
        segmentation: ``(H, W)`` int32 pybullet body ids, -1 where nothing was hit.
    """

    rgb: np.ndarray
    depth: np.ndarray
    segmentation: np.ndarray


def default_lighting() -> dict:
    """Neutral light used when no lighting is given (keys of :meth:`TabletopScene.render`)."""
    return {'direction': (0.3, 0.2, 1.0), 'color': (1.0, 1.0, 1.0), 'ambient': 0.6,
            'diffuse': 0.5, 'specular': 0.1, 'shadow': False}


def random_lighting(rng: np.random.Generator, strength: float = 1.0) -> dict:
    """Random light direction (above the table), tint and coefficients; ``strength`` in [0, 1]."""
    az = rng.uniform(0, 2 * np.pi)
    el = rng.uniform(np.radians(35), np.radians(85))
    tint = 1.0 - strength * rng.uniform(0.0, 0.25, 3)
    return {'direction': (float(np.cos(el) * np.cos(az)), float(np.cos(el) * np.sin(az)),
                          float(np.sin(el))),
            'color': tuple(float(t) for t in tint),
            'ambient': float(0.6 + strength * rng.uniform(-0.2, 0.15)),
            'diffuse': float(0.5 + strength * rng.uniform(-0.2, 0.2)),
            'specular': float(rng.uniform(0.0, 0.3 * strength)),
            'shadow': bool(rng.random() < 0.5 * strength)}


class TabletopScene:
    """Table with textured objects in a pybullet client.

    Args:
        objects: :class:`ObjectSpec` list; names must be unique.
        client: existing pybullet client id, or None to ``p.connect(p.DIRECT)`` a new one
            (closed again by :meth:`close`).
        background_seed: seed of the table-top texture (see :meth:`set_background`).
    """

    def __init__(self, objects=(), client: int | None = None, background_seed: int = 0):
        self._own_client = client is None
        self.client = p.connect(p.DIRECT) if client is None else int(client)
        self._tmp = tempfile.mkdtemp(prefix='ccl_sim_')
        self._textures = {}
        self.specs, self.bodies = {}, {}
        self.active = []
        c = self.client
        p.setGravity(0, 0, -9.81, physicsClientId=c)
        self.floor = p.loadURDF(os.path.join(pybullet_data.getDataPath(), 'plane.urdf'),
                                [0, 0, FLOOR_Z], physicsClientId=c)
        half = [(TABLE_X[1] - TABLE_X[0]) / 2, (TABLE_Y[1] - TABLE_Y[0]) / 2, TABLE_THICKNESS / 2]
        centre = [(TABLE_X[1] + TABLE_X[0]) / 2, (TABLE_Y[1] + TABLE_Y[0]) / 2,
                  TABLE_TOP_Z - TABLE_THICKNESS / 2]
        table_mesh = os.path.join(self._tmp, 'table.obj')
        meshes.write_obj(table_mesh, _table_top_mesh(half))
        vis = p.createVisualShape(p.GEOM_MESH, fileName=table_mesh, physicsClientId=c)
        col = p.createCollisionShape(p.GEOM_BOX, halfExtents=half, physicsClientId=c)
        self.table = p.createMultiBody(0, col, vis, centre, physicsClientId=c)
        p.changeDynamics(self.table, -1, lateralFriction=1.0, physicsClientId=c)
        self.background_ids = (self.floor, self.table)
        self.set_background(background_seed)
        for spec in objects:
            self.add_object(spec)

    # ----------------------------------------------------------------- assets
    def _texture(self, key, image: np.ndarray | None = None, path: str = '') -> int:
        if key not in self._textures:
            if image is not None:
                path = os.path.join(self._tmp, f'tex_{len(self._textures)}.png')
                cv2.imwrite(path, cv2.cvtColor(image, cv2.COLOR_RGB2BGR))
            elif path.lower().endswith(('.jpg', '.jpeg')):  # pybullet rejects progressive JPEGs
                png = os.path.join(self._tmp, f'tex_{len(self._textures)}.png')
                img = cv2.imread(path, cv2.IMREAD_COLOR)
                if img is None:
                    raise ValueError(f'cannot read texture {path}')
                cv2.imwrite(png, img)
                path = png
            tex = p.loadTexture(path, physicsClientId=self.client)
            if tex < 0:
                raise ValueError(f'pybullet could not load texture {path}')
            self._textures[key] = tex
        return self._textures[key]

    def set_background(self, seed: int) -> None:
        """Re-texture the table top with :func:`textures.background_texture` of ``seed``."""
        tex = self._texture(('bg', int(seed)), textures.background_texture(int(seed), 512))
        p.changeVisualShape(self.table, -1, textureUniqueId=tex, rgbaColor=[1, 1, 1, 1],
                            physicsClientId=self.client)

    def add_object(self, spec: ObjectSpec) -> int:
        """Create the body of ``spec`` (parked under the table) and return its body id."""
        if spec.name in self.specs:
            raise ValueError(f'object names must be unique in a scene: {spec.name!r} twice')
        c = self.client
        inertial = [0.0, 0.0, 0.0]
        if spec.shape == 'library':
            verts = _obj_vertices(spec.mesh_file)
            lo, hi = verts.min(0), verts.max(0)
            scale = spec.size[0] / float((hi - lo).max())
            mesh_scale = [scale * a for a in spec.scale_axes]
            inertial = list((lo + hi) / 2 * mesh_scale)
            vis = p.createVisualShape(p.GEOM_MESH, fileName=spec.mesh_file, meshScale=mesh_scale,
                                      physicsClientId=c)
            col = p.createCollisionShape(p.GEOM_MESH, fileName=spec.mesh_file,
                                         meshScale=mesh_scale, physicsClientId=c)
        else:
            path = os.path.join(self._tmp, f'{spec.name}.obj')
            if spec.shape == 'box':
                meshes.write_obj(path, meshes.box(spec.size))
                col = p.createCollisionShape(p.GEOM_BOX, halfExtents=[s / 2 for s in spec.size],
                                             physicsClientId=c)
            elif spec.shape == 'cylinder':
                meshes.write_obj(path, meshes.cylinder(*spec.size))
                col = p.createCollisionShape(p.GEOM_CYLINDER, radius=spec.size[0],
                                             height=spec.size[1], physicsClientId=c)
            elif spec.shape == 'ellipsoid':
                meshes.write_obj(path, meshes.ellipsoid(spec.size))
                col = p.createCollisionShape(p.GEOM_MESH, fileName=path, physicsClientId=c)
            else:
                raise ValueError(f'unknown object shape {spec.shape!r} for {spec.name!r}')
            vis = p.createVisualShape(p.GEOM_MESH, fileName=path, physicsClientId=c)
        body = p.createMultiBody(spec.mass, col, vis, [0, 0, -10.0 - len(self.bodies)],
                                 baseInertialFramePosition=inertial, physicsClientId=c)
        if spec.texture_seed >= 0:
            tex = self._texture(('obj', spec.texture_seed), textures.object_texture(spec.texture_seed))
        else:
            tex = self._texture(('file', spec.texture_file), path=spec.texture_file)
        p.changeVisualShape(body, -1, textureUniqueId=tex, rgbaColor=[1, 1, 1, 1], physicsClientId=c)
        p.changeDynamics(body, -1, lateralFriction=0.9, rollingFriction=0.002,
                         spinningFriction=0.002, linearDamping=0.3, angularDamping=0.3,
                         physicsClientId=c)
        self.specs[spec.name], self.bodies[spec.name] = spec, body
        self._park(spec.name, len(self.bodies) - 1)
        return body

    def _park(self, name: str, slot: int) -> None:
        """Put an unused object under the table (hidden from cameras above the table top)."""
        x = -0.3 + 0.12 * (slot % 6)
        y = -0.3 + 0.12 * (slot // 6 % 6)
        p.resetBasePositionAndOrientation(self.bodies[name], [x, y, FLOOR_Z + 0.08 + 0.1 * (slot // 36)],
                                          [0, 0, 0, 1], physicsClientId=self.client)
        p.resetBaseVelocity(self.bodies[name], [0, 0, 0], [0, 0, 0], physicsClientId=self.client)

    # ---------------------------------------------------------------- arrange
    def arrange(self, rng: np.random.Generator, names=None, settle_steps: int = 240,
                spacing: float = 0.8, workspace_half=WORKSPACE_HALF) -> list:
        """Drop objects at random positions/orientations on the table and let physics settle.

        Args:
            rng: random generator (the arrangement is a pure function of its state).
            names: objects to place (default: all); the others are parked.
            settle_steps: simulation steps at 240 Hz after dropping.
            spacing: minimal centre distance as a fraction of the sum of the two objects'
                radii; < 1 lets objects touch or lean on each other (partial occlusion).
            workspace_half: (hx, hy) m of the drop rectangle around the world origin.

        Returns:
            Names of the objects resting on the table after settling (others were parked).
        """
        names = list(self.bodies) if names is None else list(names)
        for n in names:
            if n not in self.bodies:
                raise ValueError(f'unknown object {n!r}')
        for slot, n in enumerate(self.bodies):
            if n not in names:
                self._park(n, slot)
        placed = []
        for n in names:
            radius = 0.5 * self._longest(n)
            xy = None
            for _ in range(200):
                cand = rng.uniform(-1, 1, 2) * np.asarray(workspace_half)
                if all(np.linalg.norm(cand - q) >= spacing * (radius + r) for q, r in placed):
                    xy = cand
                    break
            if xy is None:  # crowded: allow overlap, drop from higher up
                xy = rng.uniform(-1, 1, 2) * np.asarray(workspace_half)
            placed.append((xy, radius))
            quat = rng.normal(size=4)
            quat /= np.linalg.norm(quat)
            z = TABLE_TOP_Z + radius + 0.01 + 0.03 * len(placed) * (spacing < 1.0)
            p.resetBasePositionAndOrientation(self.bodies[n], [xy[0], xy[1], z], quat.tolist(),
                                              physicsClientId=self.client)
            p.resetBaseVelocity(self.bodies[n], [0, 0, 0], [0, 0, 0], physicsClientId=self.client)
        for _ in range(int(settle_steps)):
            p.stepSimulation(physicsClientId=self.client)
        resting = []
        for slot, n in enumerate(self.bodies):
            if n not in names:
                continue
            pos, _ = p.getBasePositionAndOrientation(self.bodies[n], physicsClientId=self.client)
            on_table = (TABLE_X[0] < pos[0] < TABLE_X[1] and TABLE_Y[0] < pos[1] < TABLE_Y[1]
                        and pos[2] > TABLE_TOP_Z - 0.01)
            if on_table:
                resting.append(n)
            else:
                self._park(n, slot)
        self.active = resting
        return resting

    def _longest(self, name: str) -> float:
        spec = self.specs[name]
        if spec.shape == 'library':
            return spec.size[0]
        if spec.shape == 'cylinder':
            return max(2 * spec.size[0], spec.size[1])
        if spec.shape == 'ellipsoid':
            return 2 * max(spec.size)
        return max(spec.size)

    def object_poses(self, names=None) -> dict:
        """``{name: world_from_object (4, 4)}`` of the given (default: active) objects."""
        out = {}
        for n in (self.active if names is None else names):
            pos, quat = p.getBasePositionAndOrientation(self.bodies[n], physicsClientId=self.client)
            pose = np.eye(4)
            pose[:3, :3] = np.array(p.getMatrixFromQuaternion(quat)).reshape(3, 3)
            pose[:3, 3] = pos
            out[n] = pose
        return out

    # ----------------------------------------------------------------- render
    def render(self, camera: Camera, lighting: dict | None = None) -> RenderResult:
        """Render ``camera`` with pybullet's CPU TinyRenderer.

        Args:
            camera: :class:`Camera`.
            lighting: dict as :func:`default_lighting` / :func:`random_lighting` returns.

        Returns:
            :class:`RenderResult` (rgb uint8, z-depth float32 m, segmentation int32 body ids).
        """
        light = default_lighting() if lighting is None else lighting
        _, _, rgba, buf, seg = p.getCameraImage(
            camera.width, camera.height, viewMatrix=camera.view_matrix(),
            projectionMatrix=camera.projection_matrix(), renderer=p.ER_TINY_RENDERER,
            lightDirection=list(light['direction']), lightColor=list(light['color']),
            lightAmbientCoeff=light['ambient'], lightDiffuseCoeff=light['diffuse'],
            lightSpecularCoeff=light['specular'], shadow=int(light['shadow']),
            physicsClientId=self.client)
        h, w = camera.height, camera.width
        rgb = np.asarray(rgba, dtype=np.uint8).reshape(h, w, 4)[..., :3].copy()
        depth = camera.depth_from_buffer(np.asarray(buf, dtype=np.float32).reshape(h, w))
        segmentation = np.asarray(seg, dtype=np.int32).reshape(h, w)
        depth[segmentation < 0] = np.nan
        return RenderResult(rgb, depth, segmentation)

    def close(self) -> None:
        """Disconnect the client (if this scene created it) and delete temporary assets."""
        if self._own_client and self.client is not None:
            try:
                p.disconnect(physicsClientId=self.client)
            except p.error:
                pass
        self.client = None
        shutil.rmtree(self._tmp, ignore_errors=True)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def _table_top_mesh(half) -> tuple:
    """Box mesh for the table whose top face maps the whole texture once (others: small cells)."""
    v, n, uv, f = meshes.box([2 * h for h in half])
    uv = uv.copy()
    top = np.where(n[:, 2] > 0.5)[0]
    corners = (v[top, :2] / (2 * np.asarray(half[:2]))) + 0.5
    uv[top] = corners
    return v, n, uv, f


def _obj_vertices(path: str) -> np.ndarray:
    with open(path, encoding='utf-8', errors='replace') as f:
        verts = [list(map(float, line.split()[1:4])) for line in f if line.startswith('v ')]
    if not verts:
        raise ValueError(f'no vertices in mesh {path}')
    return np.asarray(verts)
