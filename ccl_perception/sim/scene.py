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
A pybullet tabletop world: floor, table, textured objects, lights, and camera rendering.

World frame (shared with ``sim/robot.py``): z up, metres. The table top is the plane
``z = TABLE_TOP_Z = 0``; the table spans ``TABLE_X`` x ``TABLE_Y``; objects are arranged in
the workspace rectangle centred at the world origin (half extents ``WORKSPACE_HALF``); the
floor is at ``FLOOR_Z``. A Panda placed at ``(-0.55, 0, 0)`` reaches the whole workspace.

Every pybullet call passes ``physicsClientId``: several worlds can live in one process. Pass
``client=`` to build the scene inside an existing client (the simulated robot's world).

Renderers: ``'tiny'`` is pybullet's CPU TinyRenderer (benchmark v1: flat lighting, no texture
filtering); ``'egl'`` loads pybullet's ``eglRendererPlugin`` into the client, an OpenGL
renderer that runs headless on Mesa's llvmpipe (benchmark v2: directional light with shadow
mapping, mipmapped textures). Both render the same client, so the world the camera sees is
the world the simulated arm touches; depth and segmentation are exact in both (checked to
0.1 px in test/test_sim_render.py).

Segmentation: pybullet body unique ids (int32); ``-1`` = no geometry hit (sky). The table and
floor have their own ids (``scene.background_ids``); object ids are in ``scene.bodies``
(name -> id). Objects that are not part of the current arrangement are parked under the
table, hidden from any camera above the table top.
"""
from __future__ import annotations

from dataclasses import dataclass
import os
import pkgutil
import shutil
import tempfile

from ccl_perception.geometry import rotation_to_quaternion
from ccl_perception.sim import meshes, textures
from ccl_perception.sim.camera import Camera
from ccl_perception.sim.objects import ObjectSpec
import cv2
import numpy as np
import pybullet as p
import pybullet_data

TABLE_TOP_Z = 0.0                 # m, height of the table top surface
TABLE_X = (-0.75, 0.6)            # m, table extent along world x
TABLE_Y = (-0.6, 0.6)             # m, table extent along world y
TABLE_THICKNESS = 0.04            # m
FLOOR_Z = -0.75                   # m
WORKSPACE_HALF = (0.17, 0.13)     # m, objects are dropped in [-hx, hx] x [-hy, hy]


@dataclass
class RenderResult:
    """
    One rendered view.

    Attributes:
        rgb: ``(H, W, 3)`` uint8.
        depth: ``(H, W)`` float32 z-depth in metres, NaN where nothing was hit.
        segmentation: ``(H, W)`` int32 pybullet body ids, -1 where nothing was hit.
    """

    rgb: np.ndarray
    depth: np.ndarray
    segmentation: np.ndarray


RENDERERS = ('tiny', 'egl')
SKIN_RGBA = (0.87, 0.67, 0.55, 1.0)  # the hand-like distractor


def _import_triton_first() -> None:
    """
    Import triton (if installed) before Mesa's OpenGL is loaded.

    Mesa's llvmpipe (which the EGL plugin loads) and triton (which torch imports for its
    optimizers, through torch._dynamo) each bring their own LLVM. Measured here: importing
    triton after an EGL context exists kills the process (segmentation fault in
    triton/knobs.py); in the other order both work. The import takes ~0.2 s.
    """
    import importlib.util
    if importlib.util.find_spec('triton') is not None:
        import triton  # noqa: F401


def enable_egl(client: int) -> int:
    """
    Load pybullet's EGL renderer plugin into ``client``; returns the plugin id.

    Raises RuntimeError with the reason when the plugin (or EGL / Mesa) is not available.
    """
    _import_triton_first()
    loader = pkgutil.get_loader('eglRenderer')
    if loader is None:
        raise RuntimeError('pybullet was built without eglRenderer: use renderer="tiny"')
    plugin = p.loadPlugin(loader.get_filename(), '_eglRendererPlugin', physicsClientId=client)
    if plugin < 0:
        raise RuntimeError('pybullet could not start its EGL renderer (is libEGL / Mesa '
                           'installed? apt-get install -y libegl1 libgl1-mesa-dri); '
                           'use renderer="tiny"')
    return plugin


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


def photo_lighting(rng: np.random.Generator | None = None, strength: float = 1.0) -> dict:
    """
    Lighting for the ``'egl'`` renderer.

    A directional light (with shadows) above the table and a camera exposure / white-balance
    gain per channel.

    pybullet's OpenGL renderer takes only the light direction and the shadow switch (its
    ambient / diffuse levels are fixed), so brightness and colour changes are applied as the
    camera's gain on the rendered image, which is also how a real camera's auto-exposure and
    white balance change a picture. ``rng=None`` gives the neutral light (direction
    ``(0.3, 0.2, 1)``, gain 1); ``strength`` in [0, 1] scales the random changes (elevation
    85 -> 40..85 deg, gain 1 +- 0.25, tint +- 0.08).
    """
    if rng is None:
        return {'direction': (0.3, 0.2, 1.0), 'shadow': True, 'gain': (1.0, 1.0, 1.0)}
    az = rng.uniform(0, 2 * np.pi)
    el = np.radians(85.0 - strength * rng.uniform(0.0, 45.0))
    level = 1.0 + strength * rng.uniform(-0.25, 0.2)
    tint = 1.0 + strength * rng.uniform(-0.08, 0.08, 3)
    return {'direction': (float(np.cos(el) * np.cos(az)), float(np.cos(el) * np.sin(az)),
                          float(np.sin(el))),
            'shadow': True, 'gain': tuple(float(level * t) for t in tint)}


class TabletopScene:
    """
    Table with textured objects in a pybullet client.

    Args:
        objects: :class:`ObjectSpec` list; names must be unique.
        client: existing pybullet client id, or None to ``p.connect(p.DIRECT)`` a new one
            (closed again by :meth:`close`).
        background_seed: seed of the procedural table-top texture (see :meth:`set_background`);
            ignored when ``surface`` is given.
        renderer: ``'tiny'`` or ``'egl'`` (see the module docstring).
        surface: optional table-top photo (image path) for :meth:`set_surface`.
        surface_tile: metres of table covered by one copy of a surface photo.
        deterministic: sort pybullet's overlapping pairs every step
            (``deterministicOverlappingPairs``), so physics does not depend on the contacts
            of earlier arrangements: ``arrange(seed)`` then gives the same poses whatever ran
            before. Default: on for ``renderer='egl'`` (benchmark v2), off for ``'tiny'`` so
            benchmark v1 renders exactly as before.
    """

    def __init__(self, objects=(), client: int | None = None, background_seed: int = 0,
                 renderer: str = 'tiny', surface: str | None = None, surface_tile: float = 0.5,
                 deterministic: bool | None = None):
        if renderer not in RENDERERS:
            raise ValueError(f'renderer must be one of {RENDERERS}, got {renderer!r}')
        self._own_client = client is None
        self.client = p.connect(p.DIRECT) if client is None else int(client)
        self.renderer = renderer
        if renderer == 'egl':
            try:
                enable_egl(self.client)
            except RuntimeError:
                if self._own_client:
                    p.disconnect(physicsClientId=self.client)
                raise
        self._tmp = tempfile.mkdtemp(prefix='ccl_sim_')
        self._textures = {}
        self._sizes_seen = set()
        self.specs, self.bodies = {}, {}
        self.active = []
        self.hand = None
        c = self.client
        p.setGravity(0, 0, -9.81, physicsClientId=c)
        if renderer == 'egl' if deterministic is None else deterministic:
            p.setPhysicsEngineParameter(deterministicOverlappingPairs=1, physicsClientId=c)
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
        self._table_half, self._table_centre = half, centre
        self.surface_tile = float(surface_tile)
        self._cloths = {}          # surface photo path -> visual-only body on the table top
        self.surface = None
        if surface is not None:
            p.changeVisualShape(self.table, -
                                1, rgbaColor=[0.45, 0.36, 0.28, 1.0], physicsClientId=c)
            self.set_surface(surface)
        else:
            self.set_background(background_seed)
        for spec in objects:
            self.add_object(spec)

    @property
    def background_ids(self) -> tuple:
        """Body ids that are not objects: floor, table, table-top photos, hand distractor."""
        extra = () if self.hand is None else (self.hand,)
        return (self.floor, self.table, *self._cloths.values(), *extra)

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

    def set_surface(self, path: str) -> None:
        """
        Cover the table top with the photo at ``path`` (any image format).

        The photo is mirrored into a seamless 2x2 copy that repeats every ``2 * surface_tile``
        metres, on a visual-only sheet 0.3 mm above the table top (objects rest on the table's
        collision box, so the sheet is never seen through). Every photo gets its own sheet,
        referenced from an MTL file: pybullet's EGL plugin numbers the textures of
        ``loadTexture`` differently from the server once meshes bring their own textures, so
        ``changeVisualShape(textureUniqueId=...)`` would show the wrong image there.
        """
        key = os.path.abspath(path)
        if key not in self._cloths:
            img = cv2.imread(path, cv2.IMREAD_COLOR)
            if img is None:
                raise ValueError(f'cannot read surface image {path}')
            top = np.concatenate([img, img[:, ::-1]], axis=1)
            stem = f'{os.path.basename(self._tmp)}-cloth{len(self._cloths)}'
            if not cv2.imwrite(os.path.join(self._tmp, stem + '.png'),
                               np.concatenate([top, top[::-1]], axis=0)):
                raise OSError(f'could not write the surface texture into {self._tmp}')
            with open(os.path.join(self._tmp, stem + '.mtl'), 'w', encoding='ascii') as f:
                f.write(f'newmtl m\nKd 1 1 1\nmap_Kd {stem}.png\n')
            obj = os.path.join(self._tmp, stem + '.obj')
            meshes.write_obj(
                obj,
                _sheet_mesh(
                    self._table_half,
                    self._table_centre,
                    2.0 *
                    self.surface_tile))
            with open(obj, encoding='ascii') as f:
                text = f.read()
            with open(obj, 'w', encoding='ascii') as f:
                f.write(f'mtllib {stem}.mtl\nusemtl m\n' + text)
            vis = p.createVisualShape(p.GEOM_MESH, fileName=obj, physicsClientId=self.client)
            self._cloths[key] = p.createMultiBody(0, -1, vis, [0, 0, FLOOR_Z - 1.0],
                                                  physicsClientId=self.client)
        for k, body in self._cloths.items():
            z = TABLE_TOP_Z + 3e-4 if k == key else FLOOR_Z - \
                1.0 - 0.01 * list(self._cloths).index(k)
            p.resetBasePositionAndOrientation(
                body, [
                    0, 0, z], [
                    0, 0, 0, 1], physicsClientId=self.client)
        self.surface = key

    def add_object(self, spec: ObjectSpec) -> int:
        """Create the body of ``spec`` (parked under the table) and return its body id."""
        if spec.name in self.specs:
            raise ValueError(f'object names must be unique in a scene: {spec.name!r} twice')
        c = self.client
        inertial = [0.0, 0.0, 0.0]
        if spec.shape == 'parts':
            if not spec.parts or not spec.collision_file:
                raise ValueError(
                    f'object {spec.name!r}: shape "parts" needs parts and a collision_file')
            vis = p.createVisualShapeArray([p.GEOM_MESH] * len(spec.parts),
                                           fileNames=[q.obj_file for q in spec.parts],
                                           rgbaColors=[list(q.rgba) for q in spec.parts],
                                           physicsClientId=c)
            # a dynamic GEOM_MESH collision shape is the convex hull of the file's vertices
            col = p.createCollisionShape(
                p.GEOM_MESH,
                fileName=spec.collision_file,
                physicsClientId=c)
            if vis < 0 or col < 0:
                raise ValueError(f'pybullet could not load the meshes of {spec.name!r}')
        elif spec.shape == 'library':
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
        if spec.shape == 'parts':
            pass  # each part's texture comes with its OBJ's MTL file
        elif spec.texture_seed >= 0:
            tex = self._texture(
                ('obj', spec.texture_seed), textures.object_texture(
                    spec.texture_seed))
            p.changeVisualShape(body, -1, textureUniqueId=tex,
                                rgbaColor=[1, 1, 1, 1], physicsClientId=c)
        else:
            tex = self._texture(('file', spec.texture_file), path=spec.texture_file)
            p.changeVisualShape(body, -1, textureUniqueId=tex,
                                rgbaColor=[1, 1, 1, 1], physicsClientId=c)
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
        p.resetBasePositionAndOrientation(self.bodies[name],
                                          [x, y, FLOOR_Z + 0.08 + 0.1 * (slot // 36)],
                                          [0, 0, 0, 1], physicsClientId=self.client)
        p.resetBaseVelocity(self.bodies[name], [0, 0, 0], [0, 0, 0], physicsClientId=self.client)

    # ---------------------------------------------------------------- arrange
    def arrange(self, rng: np.random.Generator, names=None, settle_steps: int = 240,
                spacing: float = 0.8, workspace_half=WORKSPACE_HALF) -> list:
        """
        Drop objects at random positions/orientations on the table and let physics settle.

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
        if spec.shape == 'parts':
            return max(spec.size)
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
            pos, quat = p.getBasePositionAndOrientation(
                self.bodies[n], physicsClientId=self.client)
            pose = np.eye(4)
            pose[:3, :3] = np.array(p.getMatrixFromQuaternion(quat)).reshape(3, 3)
            pose[:3, 3] = pos
            out[n] = pose
        return out

    # ----------------------------------------------------------------- render
    def render(self, camera: Camera, lighting: dict | None = None) -> RenderResult:
        """
        Render ``camera`` with this scene's renderer.

        Args:
            camera: :class:`Camera`.
            lighting: for ``'tiny'`` a dict as :func:`default_lighting` / :func:`random_lighting`
                return; for ``'egl'`` as :func:`photo_lighting` returns (``direction``,
                ``shadow``, ``gain``). Default: the neutral light of the renderer.

        Returns:
            :class:`RenderResult` (rgb uint8, z-depth float32 m, segmentation int32 body ids).
        """
        h, w = camera.height, camera.width
        if self.renderer == 'egl':
            light = photo_lighting() if lighting is None else lighting
            # Measured with pybullet 3.2.7 on Mesa: the first image of a size differs from
            # every later image of the same state in shadow pixels, and the shadows of an
            # image depend on the image requested before it (after a restore_state they showed
            # the previous light / poses). A throw-away first image per size and an 8x6 image
            # of the same state and light before every image (~30 ms at 640x480) make every
            # returned image a function of the current state and light only; tested in
            # test_benchmark_v2 (restores, resets after other trials).
            args = dict(viewMatrix=camera.view_matrix(),  # noqa: C408
                        projectionMatrix=camera.projection_matrix('opengl'),
                        renderer=p.ER_BULLET_HARDWARE_OPENGL,
                        lightDirection=list(light['direction']),
                        shadow=int(light.get('shadow', True)), physicsClientId=self.client)
            if (w, h) not in self._sizes_seen:
                self._sizes_seen.add((w, h))
                p.getCameraImage(w, h, **args)
            p.getCameraImage(8, 6, flags=p.ER_NO_SEGMENTATION_MASK, **args)
            _, _, rgba, buf, seg = p.getCameraImage(
                w, h, viewMatrix=camera.view_matrix(),
                projectionMatrix=camera.projection_matrix('opengl'),
                renderer=p.ER_BULLET_HARDWARE_OPENGL, lightDirection=list(light['direction']),
                shadow=int(light.get('shadow', True)), physicsClientId=self.client)
            rgb = np.asarray(rgba, dtype=np.uint8).reshape(h, w, 4)[..., :3]
            gain = np.asarray(light.get('gain', (1.0, 1.0, 1.0)), dtype=np.float32)
            if np.any(gain != 1.0):
                rgb = np.clip(rgb * gain + 0.5, 0, 255).astype(np.uint8)
            else:
                rgb = rgb.copy()
        else:
            light = default_lighting() if lighting is None else lighting
            _, _, rgba, buf, seg = p.getCameraImage(
                w, h, viewMatrix=camera.view_matrix(),
                projectionMatrix=camera.projection_matrix('tiny'), renderer=p.ER_TINY_RENDERER,
                lightDirection=list(light['direction']), lightColor=list(light['color']),
                lightAmbientCoeff=light['ambient'], lightDiffuseCoeff=light['diffuse'],
                lightSpecularCoeff=light['specular'], shadow=int(light['shadow']),
                physicsClientId=self.client)
            rgb = np.asarray(rgba, dtype=np.uint8).reshape(h, w, 4)[..., :3].copy()
        depth = camera.depth_from_buffer(np.asarray(buf, dtype=np.float32).reshape(h, w))
        segmentation = np.asarray(seg, dtype=np.int32).reshape(h, w)
        depth[segmentation < 0] = np.nan
        return RenderResult(rgb, depth, segmentation)

    # ----------------------------------------------------------- state, hand
    def save_state(self) -> int:
        """Snapshot the whole client (poses, velocities, contacts); see :meth:`restore_state`."""
        return p.saveState(physicsClientId=self.client)

    def restore_state(self, state: int, active=None) -> None:
        """
        Restore a :meth:`save_state` snapshot exactly.

        Renders after two restores of the same snapshot are bit-identical. ``active``: the
        object names resting on the table in it.
        """
        p.restoreState(stateId=state, physicsClientId=self.client)
        if active is not None:
            self.active = list(active)

    def show_hand(self, rng: np.random.Generator, camera: Camera, reach: float = 0.35) -> None:
        """
        Put a hand-like distractor into the view, entering from a random image border.

        Forearm, palm, four fingers and a thumb; skin coloured, visual only: it touches nothing.

        As the operator's hands in the paper's frames it occludes objects; its segmentation id
        is :attr:`hand` (not an object, so no ground truth is computed on it).
        """
        c = self.client
        if self.hand is None:
            r = 0.011
            shapes = [(p.GEOM_CAPSULE, {'radius': 0.03, 'length': 0.16},
                       (0.0, 0.0, -0.14)),  # forearm
                      (p.GEOM_BOX, {'halfExtents': [0.042, 0.016, 0.045]},
                       (0.0, 0.0, 0.0))]  # palm
            for k, x in enumerate((-0.03, -0.01, 0.01, 0.03)):
                shapes.append((p.GEOM_CAPSULE,
                               {'radius': r, 'length': 0.05 + 0.01 * (k in (1, 2))},
                               (x, 0.0, 0.075)))
            shapes.append((p.GEOM_CAPSULE, {'radius': 0.012, 'length': 0.045}, (0.055, 0.0, 0.0)))
            ids = [p.createVisualShape(t, rgbaColor=list(SKIN_RGBA), visualFramePosition=list(pos),
                                       physicsClientId=c, **kw) for t, kw, pos in shapes]
            # one body per part would work too; a multi-link body keeps it to one id
            self.hand = p.createMultiBody(0, -1, ids[0], [0, 0, -5],
                                          linkMasses=[0] * (len(ids) - 1),
                                          linkCollisionShapeIndices=[-1] * (len(ids) - 1),
                                          linkVisualShapeIndices=ids[1:],
                                          linkPositions=[[0, 0, 0]] * (len(ids) - 1),
                                          linkOrientations=[[0, 0, 0, 1]] * (len(ids) - 1),
                                          linkInertialFramePositions=[[0, 0, 0]] * (len(ids) - 1),
                                          linkInertialFrameOrientations=[
                                              [0, 0, 0, 1]] * (len(ids) - 1),
                                          linkParentIndices=[0] * (len(ids) - 1),
                                          linkJointTypes=[p.JOINT_FIXED] * (len(ids) - 1),
                                          linkJointAxis=[[0, 0, 1]] * (len(ids) - 1),
                                          physicsClientId=c)
        # fingertips point from a border of the view towards its centre, palm down
        centre = camera.world_from_camera[:3, 3] + camera.world_from_camera[:3, 2] * \
            (camera.world_from_camera[2, 3] - TABLE_TOP_Z) / \
            max(-camera.world_from_camera[2, 2], 1e-3)
        az = rng.uniform(0, 2 * np.pi)
        tip = centre[:2] + rng.uniform(0.0, 0.6) * reach * 0.5 * np.array([np.cos(az), np.sin(az)])
        direction = -np.array([np.cos(az), np.sin(az)])
        height = TABLE_TOP_Z + rng.uniform(0.06, 0.14)
        wrist = tip - 0.1 * direction
        # hand frame: z along the fingers (horizontal), y up (palm normal down is -y)
        z = np.array([direction[0], direction[1], -0.25])
        z /= np.linalg.norm(z)
        y = np.cross(z, np.cross(np.array([0, 0, 1.0]), z))
        y /= np.linalg.norm(y)
        x = np.cross(y, z)
        rot = np.stack([x, y, z], axis=1)
        quat = rotation_to_quaternion(rot)
        p.resetBasePositionAndOrientation(self.hand, [wrist[0], wrist[1], height], quat,
                                          physicsClientId=c)

    def hide_hand(self) -> None:
        """Move the distractor out of every view."""
        if self.hand is not None:
            p.resetBasePositionAndOrientation(self.hand, [0, 0, -5], [0, 0, 0, 1],
                                              physicsClientId=self.client)

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


def _sheet_mesh(half, centre, repeat: float) -> tuple:
    """
    Quad covering the table top (world x, y; z = 0 in its own frame).

    Its texture coordinates are world ``x, y / repeat`` (the texture repeats every ``repeat``
    metres).
    """
    x0, x1 = centre[0] - half[0], centre[0] + half[0]
    y0, y1 = centre[1] - half[1], centre[1] + half[1]
    v = np.array([[x0, y0, 0.0], [x1, y0, 0.0], [x1, y1, 0.0], [x0, y1, 0.0]])
    n = np.tile([0.0, 0.0, 1.0], (4, 1))
    uv = v[:, :2] / float(repeat) + 0.5
    return v, n, uv, np.array([[0, 1, 2], [0, 2, 3]])


def _obj_vertices(path: str) -> np.ndarray:
    with open(path, encoding='utf-8', errors='replace') as f:
        verts = [list(map(float, line.split()[1:4])) for line in f if line.startswith('v ')]
    if not verts:
        raise ValueError(f'no vertices in mesh {path}')
    return np.asarray(verts)
