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
Simulated Franka Emika Panda with its parallel gripper, in an existing pybullet world.

The arm is loaded from ``pybullet_data/franka_panda/panda.urdf`` into the pybullet client of
the scene (the camera, the objects and the arm share ONE client, so what the camera sees is
what the arm touches). Motion is physical: joint position control with bounded forces and
``stepSimulation`` at the client's time step (default 1/240 s), so a bad grasp pose really
pushes objects away or closes on air.

Frames (all poses are world frame, metres, quaternions ``(x, y, z, w)`` as pybullet uses):

- ``TCP`` (tool centre point) = link ``panda_grasptarget`` shifted by ``tcp_offset`` along
  its z axis: the point midway between the two finger pads.
- TCP axes: ``z`` = approach direction (out of the palm, towards the object), ``y`` = the
  finger closing axis (the two fingers move along +-y), ``x = y x z``.  This is the
  ``panda_hand`` convention of MoveIt's Panda config too.

No rclpy here: this module is used by the in-process benchmark as well as by the sim world
node.
"""
from __future__ import annotations

from dataclasses import dataclass, field
import math
import os

from ccl_perception.geometry import CAMERA_FRAME  # noqa: F401 - frame id of the RGB-D images
import numpy as np
import pybullet as p
import pybullet_data

ARM_JOINTS = (0, 1, 2, 3, 4, 5, 6)
FINGER_JOINTS = (9, 10)
GRASP_TARGET_LINK = 11  # panda_grasptarget (fixed to panda_hand)
HAND_LINK = 8
FINGER_LINKS = (9, 10)
FINGER_MAX_OPENING = 0.04  # metres per finger (0.08 m stroke)


@dataclass
class PandaConfig:
    """Where the arm stands and how it moves.  Units: metres, radians, newtons, seconds."""

    base_position: tuple = (-0.55, 0.0, 0.0)   # world position of panda_link0
    base_yaw: float = 0.0                       # rotation of the base about world z
    # Parking pose: arm folded and turned away, out of a top-down camera's view.
    home_joints: tuple = (-1.9, -0.6, 0.0, -2.6, 0.0, 2.0, 0.785)
    # Hand above the workspace pointing down: every grasp starts here (a good IK seed).
    ready_joints: tuple = (0.0, -0.4, 0.0, -2.4, 0.0, 2.0, 0.785)
    tcp_offset: float = -0.012        # grasptarget -> finger-pad centre along z (17 mm above tips)
    arm_force: float = 240.0          # N*m per arm joint motor
    finger_force: float = 40.0        # N per finger (Panda: 70 N continuous for both)
    max_joint_step: float = 0.02      # rad per control step (limits speed: ~4.8 rad/s)
    position_tolerance: float = 0.004  # m, to call a waypoint reached
    orientation_tolerance: float = 0.05  # rad
    urdf: str = field(default_factory=lambda: os.path.join(
        pybullet_data.getDataPath(), 'franka_panda', 'panda.urdf'))


def quat_angle(q1, q2) -> float:
    """Rotation angle in rad between two unit quaternions ``(x, y, z, w)``."""
    d = abs(float(np.dot(np.asarray(q1, float), np.asarray(q2, float))))
    return 2.0 * math.acos(min(1.0, d))


class PandaRobot:
    """
    A Panda arm + hand inside pybullet client ``client``.

    Args:
        client: pybullet physics client id that already holds the scene.
        config: :class:`PandaConfig`; defaults place the base 0.55 m behind the world origin.
    """

    def __init__(self, client: int, config: PandaConfig | None = None):
        self.client = int(client)
        self.cfg = config or PandaConfig()
        orn = p.getQuaternionFromEuler((0.0, 0.0, self.cfg.base_yaw))
        self.body = p.loadURDF(self.cfg.urdf, self.cfg.base_position, orn, useFixedBase=True,
                               flags=p.URDF_USE_SELF_COLLISION_EXCLUDE_ALL_PARENTS,
                               physicsClientId=self.client)
        info = [p.getJointInfo(self.body, j, physicsClientId=self.client) for j in ARM_JOINTS]
        self.lower = [i[8] for i in info]
        self.upper = [i[9] for i in info]
        self.ranges = [u - lo for lo, u in zip(self.lower, self.upper)]
        # Fingers: high friction so a grasp holds under the bounded closing force.
        for link in FINGER_LINKS:
            p.changeDynamics(self.body, link, lateralFriction=1.5, spinningFriction=0.01,
                             physicsClientId=self.client)
        self.reset_home()

    # ------------------------------------------------------------------ state
    def arm_joints(self) -> np.ndarray:
        """(7,) current arm joint angles in rad."""
        return np.array([p.getJointState(self.body, j, physicsClientId=self.client)[0]
                         for j in ARM_JOINTS])

    def finger_width(self) -> float:
        """Distance between the finger pads in metres (0 = closed, 0.08 = fully open)."""
        return float(sum(p.getJointState(self.body, j, physicsClientId=self.client)[0]
                         for j in FINGER_JOINTS))

    def tcp_pose(self) -> tuple[np.ndarray, np.ndarray]:
        """World pose of the TCP: position (3,) in m, quaternion (4,) xyzw."""
        st = p.getLinkState(self.body, GRASP_TARGET_LINK, computeForwardKinematics=True,
                            physicsClientId=self.client)
        pos, quat = np.array(st[4]), np.array(st[5])
        z_axis = np.array(p.getMatrixFromQuaternion(quat)).reshape(3, 3)[:, 2]
        return pos + self.cfg.tcp_offset * z_axis, quat

    def reset_home(self) -> None:
        """Teleport (no physics) to the parking pose with the gripper open."""
        for j, q in zip(ARM_JOINTS, self.cfg.home_joints):
            p.resetJointState(self.body, j, q, physicsClientId=self.client)
        for j in FINGER_JOINTS:
            p.resetJointState(self.body, j, FINGER_MAX_OPENING, physicsClientId=self.client)
        self._command_arm(np.array(self.cfg.home_joints))
        self._command_fingers(FINGER_MAX_OPENING)

    # ----------------------------------------------------------------- control
    def _command_arm(self, q: np.ndarray) -> None:
        p.setJointMotorControlArray(self.body, ARM_JOINTS, p.POSITION_CONTROL,
                                    targetPositions=list(q), forces=[self.cfg.arm_force] * 7,
                                    positionGains=[0.3] * 7, physicsClientId=self.client)

    def _command_fingers(self, opening: float) -> None:
        p.setJointMotorControlArray(self.body, FINGER_JOINTS, p.POSITION_CONTROL,
                                    targetPositions=[opening, opening],
                                    forces=[self.cfg.finger_force] * 2,
                                    physicsClientId=self.client)

    def _flange_target(self, pos, quat) -> np.ndarray:
        """grasptarget-link position that puts the TCP at ``pos`` with orientation ``quat``."""
        z_axis = np.array(p.getMatrixFromQuaternion(quat)).reshape(3, 3)[:, 2]
        return np.asarray(pos, float) - self.cfg.tcp_offset * z_axis

    def solve_ik(self, pos, quat) -> np.ndarray:
        """
        (7,) joint angles putting the TCP at world ``pos`` (m) / ``quat`` (xyzw).

        Damped-least-squares IK of pybullet with the joint limits as null-space bounds,
        seeded from the current joints. The result is not guaranteed to reach: check with
        :meth:`move_to`'s return value.
        """
        sol = p.calculateInverseKinematics(
            self.body, GRASP_TARGET_LINK, self._flange_target(pos, quat), quat,
            lowerLimits=self.lower, upperLimits=self.upper, jointRanges=self.ranges,
            restPoses=list(self.arm_joints()), maxNumIterations=200, residualThreshold=1e-5,
            physicsClientId=self.client)
        return np.clip(np.array(sol[:7]), self.lower, self.upper)

    def step(self, n: int = 1) -> None:
        for _ in range(int(n)):
            p.stepSimulation(physicsClientId=self.client)

    def move_to(self, pos, quat, max_steps: int = 600, settle_steps: int = 10) -> bool:
        """
        Drive the TCP to a world pose with joint position control and physics.

        Re-solves IK every control step (closed loop), limits each joint's change per step
        to ``max_joint_step``, and stops when the TCP is within tolerance or after
        ``max_steps`` physics steps. Returns True when the pose was reached.
        """
        quat = np.asarray(quat, float) / np.linalg.norm(quat)
        for _ in range(int(max_steps)):
            q_goal = self.solve_ik(pos, quat)
            q_now = self.arm_joints()
            dq = np.clip(q_goal - q_now, -self.cfg.max_joint_step, self.cfg.max_joint_step)
            self._command_arm(q_now + dq)
            self.step(1)
            if self._reached(pos, quat):
                self.step(settle_steps)
                return True
        return self._reached(pos, quat)

    def move_joints(self, q_goal, max_steps: int = 600, tol: float = 0.01) -> bool:
        """Joint-space motion to (7,) ``q_goal`` (rad), rate-limited; True when reached."""
        q_goal = np.clip(np.asarray(q_goal, float), self.lower, self.upper)
        for _ in range(int(max_steps)):
            q_now = self.arm_joints()
            if np.abs(q_goal - q_now).max() < tol:
                return True
            dq = np.clip(q_goal - q_now, -self.cfg.max_joint_step, self.cfg.max_joint_step)
            self._command_arm(q_now + dq)
            self.step(1)
        return bool(np.abs(q_goal - self.arm_joints()).max() < tol)

    def move_linear(self, start, goal, quat, n_waypoints: int = 20, max_steps: int = 120) -> bool:
        """Straight-line TCP motion from ``start`` to ``goal`` (m) at fixed orientation."""
        start, goal = np.asarray(start, float), np.asarray(goal, float)
        for s in np.linspace(0.0, 1.0, int(n_waypoints) + 1)[1:]:
            self.move_to(start + s * (goal - start), quat, max_steps=max_steps, settle_steps=0)
        return self._reached(goal, quat)

    def _reached(self, pos, quat) -> bool:
        cur_pos, cur_quat = self.tcp_pose()
        return (np.linalg.norm(cur_pos - np.asarray(pos)) < self.cfg.position_tolerance
                and quat_angle(cur_quat, quat) < self.cfg.orientation_tolerance)

    def open_gripper(self, steps: int = 60) -> float:
        """Open fully; returns the finger width in m."""
        self._command_fingers(FINGER_MAX_OPENING)
        self.step(steps)
        return self.finger_width()

    def close_gripper(self, steps: int = 120) -> float:
        """Close with the configured force (holds the arm still); returns the width in m."""
        self._command_arm(self.arm_joints())
        self._command_fingers(0.0)
        self.step(steps)
        return self.finger_width()

    def hold_fingers_closed(self) -> None:
        """Keep squeezing while the arm moves (call before lifting)."""
        self._command_fingers(0.0)

    def contacts_with(self, body: int) -> tuple[bool, bool]:
        """Whether the (left, right) finger touches ``body`` right now."""
        out = []
        for link in FINGER_LINKS:
            pts = p.getContactPoints(self.body, body, linkIndexA=link, physicsClientId=self.client)
            out.append(len(pts) > 0)
        return out[0], out[1]

    def remove(self) -> None:
        p.removeBody(self.body, physicsClientId=self.client)


# ---------------------------------------------------------------------------------------
# The grasping world: scene + camera + arm in ONE pybullet client.
# ---------------------------------------------------------------------------------------


@dataclass
class SimWorldConfig:
    """Scene, camera and arm settings of :class:`SimWorld` (angles in degrees, lengths in m)."""

    width: int = 320                      # image size (px); RealSense-like 4:3
    height: int = 240
    fov_y_deg: float = 50.0               # vertical field of view
    catalogue_seed: int = 0               # ccl_perception.sim.objects.object_catalogue seed
    n_procedural: int = 30                # procedural objects in the catalogue
    objects: tuple = ()                   # catalogue names used in scenes; () = first n_objects
    n_objects: int = 8                    # how many catalogue objects are loaded when objects=()
    background_seed: int = 1              # table texture (1 = the training set's default)
    clutter: tuple = (4, 6)               # min, max objects per scene
    camera_distance: tuple = (0.40, 0.60)  # eye distance from the look-at point
    camera_elevation_deg: tuple = (40.0, 85.0)  # 90 = straight down
    camera_azimuth_deg: tuple = (-140.0, 140.0)  # about world z from +x; the arm stands at 180
    look_at_jitter: float = 0.04          # random offset of the look-at point (m)
    reference_height: float = 0.45        # top-down reference camera height above the table
    # 'reference_face_up': every object rests on the same face as in its reference view
    # (seed 0), at a random position and yaw -- the view changes, the grasp face stays visible;
    # 'random': tumbled from a random orientation (the grasp face may end up hidden).
    object_pose_mode: str = 'reference_face_up'
    robot: PandaConfig = field(default_factory=PandaConfig)
    # 'v1': catalogue objects above, procedural table, TinyRenderer; 'v2': the benchmark v2
    # objects (objects=() -> the 12 seen ones), a table-top photo, the OpenGL renderer; build
    # the whole v2 camera / scene setting with ccl_perception.sim.grasp_scene.v2_world_config().
    benchmark: str = 'v1'
    surface: str = 'oak_light'            # v2: table-top photo (benchmark_v2.yaml key)
    # v2: further table-top photos a scene may use (reset(surface=...)), loaded at the start
    surfaces: tuple = ()
    # 'placed': a present target is somewhere on the table (it may be out of view or hidden);
    # 'visible': it must also be in view and graspable, checked on the render
    # (ccl_perception.sim.scene_check); else the seed's next arrangement is tried
    scene_rule: str = 'placed'
    scene_check: dict = field(default_factory=dict)  # overrides of scene_check.DEFAULTS
    max_scene_tries: int = 60             # 'visible': arrangements tried per seed


@dataclass
class SceneInfo:
    """What :meth:`SimWorld.reset` built."""

    seed: int
    objects: list                          # names resting on the table
    target: str | None                     # name of the object to grasp (None: no target)
    target_present: bool
    camera: object                         # ccl_perception.sim.camera.Camera
    surface: str = ''                      # v2: the table-top photo (benchmark_v2.yaml key)
    attempt: int = 0                       # 'visible': index of the accepted arrangement
    rejected: list = field(default_factory=list)  # 'visible': why earlier ones were not
    check: dict = field(default_factory=dict)     # 'visible': scene_check statistics


def camera_from_angles(distance, elevation_deg, azimuth_deg, look_at, width, height, fov_y_deg):
    """Camera on a sphere around ``look_at`` (m), looking at it; elevation 90 = top-down."""
    from ccl_perception.sim.camera import Camera
    el, az = math.radians(elevation_deg), math.radians(azimuth_deg)
    eye = np.asarray(look_at, float) + distance * np.array(
        [math.cos(el) * math.cos(az), math.cos(el) * math.sin(az), math.sin(el)])
    return Camera.looking_at(eye, look_at, width, height, fov_y_deg)


class SimWorld:
    """
    Table, objects, camera and Panda sharing one pybullet client (thread-safe via ``lock``).

    A world, not an executor: grasps are executed by
    ``ccl_perception.executors.sim_executor.world_executor(world)``, which drives
    :attr:`robot` under :attr:`lock`, judges against :meth:`target_body` and follows the
    camera through :meth:`add_camera_listener`. Used in-process by
    ``training/grasp_benchmark.py`` and wrapped by the sim world node.
    """

    def __init__(self, config: SimWorldConfig | None = None):
        import threading

        from ccl_perception.sim.objects import object_catalogue
        from ccl_perception.sim.scene import TabletopScene

        self.cfg = config or SimWorldConfig()
        if self.cfg.benchmark == 'v2':
            from ccl_perception.sim.catalogue_v2 import scene_objects
            by_name, default_names = scene_objects()
        else:
            catalogue = object_catalogue(self.cfg.catalogue_seed, self.cfg.n_procedural)
            by_name = {s.name: s for s in catalogue}
            default_names = [s.name for s in catalogue[:self.cfg.n_objects]]
        names = list(self.cfg.objects) or default_names
        unknown = [n for n in names if n not in by_name]
        if unknown:
            raise ValueError(f'unknown object(s) {unknown}; catalogue has {sorted(by_name)}')
        if len(names) < 2:
            raise ValueError('a SimWorld needs at least two objects')
        self.lock = threading.RLock()
        if self.cfg.scene_rule not in ('placed', 'visible'):
            raise ValueError(f"scene_rule must be 'placed' or 'visible', got "
                             f'{self.cfg.scene_rule!r}')
        self._surfaces, self._glossy = {}, set()
        if self.cfg.benchmark == 'v2':
            from ccl_perception.sim.catalogue_v2 import build_catalogue, load_selection, make_scene
            self.scene = make_scene([by_name[n] for n in names], self.cfg.surface)
            cat = build_catalogue()
            for key in dict.fromkeys((*self.cfg.surfaces, self.cfg.surface)):
                self._surfaces[key] = cat.surface_path(key)
                self.scene.set_surface(self._surfaces[key])  # every sheet exists in the snapshot
            self.scene.set_surface(self._surfaces[self.cfg.surface])
            self._glossy = {e.key for e in load_selection().surfaces if e.finish == 'glossy'}
        elif self.cfg.surfaces:
            raise ValueError('surfaces are table photos of benchmark v2')
        else:
            self.scene = TabletopScene([by_name[n] for n in names],
                                       background_seed=self.cfg.background_seed,
                                       deterministic=True)
        self.client = self.scene.client
        self.robot = PandaRobot(self.client, self.cfg.robot)
        self._camera_listeners = []
        self.object_names = names
        self.info = None
        self._rest = {}
        self._axis = {}
        self._lighting = None
        self.set_camera(camera_from_angles(self.cfg.reference_height, 90.0, 0.0, (0, 0, 0),
                                           self.cfg.width, self.cfg.height, self.cfg.fov_y_deg))
        # every reset() starts from this snapshot (objects parked, arm home), so a scene is a
        # pure function of its seed, whatever trials ran before (repeatable single trials)
        self._pristine = self.scene.save_state()

    @property
    def camera(self):
        return self._camera

    def set_camera(self, camera) -> None:
        """Use ``camera`` for rendering; the listeners learn where the optical frame is."""
        self._camera = camera
        for listener in self._camera_listeners:
            listener(camera.world_from_camera)

    def add_camera_listener(self, listener) -> None:
        """Call ``listener(world_from_camera (4, 4))`` now and on every camera change."""
        self._camera_listeners.append(listener)
        listener(self._camera.world_from_camera)

    def target_body(self):
        """Return the pybullet id of the current scene's target, None when absent or unset."""
        info = self.info
        if info is None or info.target is None or not info.target_present:
            return None
        return self.body(info.target)

    def body(self, name: str) -> int:
        if name not in self.scene.bodies:
            raise ValueError(f'unknown object {name!r}; known: {self.object_names}')
        return self.scene.bodies[name]

    def reset(self, seed: int, target: str | None = None, target_present: bool = True,
              names=None, surface: str | None = None) -> SceneInfo:
        """
        Make a new cluttered scene and camera viewpoint, a pure function of its arguments.

        Args:
            seed: scene seed.
            target: object the scene is about; with ``target_present=False`` it is left out
                (the false-grasp test) -- any grasp then counts as a false grasp.
            target_present: whether ``target`` is in the scene (see ``target``).
            names: explicit object list (else ``clutter`` random objects).
            surface: v2 table-top photo, ``cfg.surface`` or one of ``cfg.surfaces`` (None:
                ``cfg.surface``); a glossy one (benchmark_v2.yaml ``finish``) gets its light
                mirrored into the view (:mod:`ccl_perception.sim.gloss`).

        With ``scene_rule='visible'`` and a present target, arrangement 0 of the seed is
        ``default_rng(seed)`` (the 'placed' scene) and arrangement ``k`` uses
        ``default_rng([seed, k])``; the first whose target passes
        :func:`ccl_perception.sim.scene_check.check_target` is kept (``info.attempt``,
        ``info.rejected``). ``ValueError`` after ``max_scene_tries``.
        """
        if target is not None and target not in self.object_names:
            raise ValueError(f'unknown target {target!r}; known: {self.object_names}')
        if surface is not None and not self._surfaces:
            raise ValueError(f'surface {surface!r}: this world has no table photos (benchmark v1)')
        surface = self.cfg.surface if surface is None else surface
        if self._surfaces and surface not in self._surfaces:
            raise ValueError(f'unknown surface {surface!r}; this world has '
                             f'{", ".join(sorted(self._surfaces))} (held-out ones: protocol '
                             "'visible')")
        if self.cfg.scene_rule == 'placed' or target is None or not target_present:
            return self._reset_once(np.random.default_rng(seed), seed, target, target_present,
                                    names, surface)
        from ccl_perception.sim.scene_check import check_target
        with self.lock:
            axis = self.grasp_axis(target)
            rejected = []
            for k in range(int(self.cfg.max_scene_tries)):
                rng = np.random.default_rng(seed if k == 0 else [seed, k])
                info = self._reset_once(rng, seed, target, True, names, surface)
                if not info.target_present:
                    rejected.append('the target fell off the table')
                    continue
                T = self.scene.object_poses([target])[target]
                ok, why, stats = check_target(self.scene, info.camera, self.body(target),
                                              axis @ T[:3, :3].T + T[:3, 3],
                                              self.cfg.scene_check)
                if ok:
                    info.attempt, info.rejected, info.check = k, rejected, stats
                    return info
                rejected.append(why)
        raise ValueError(f'seed {seed}: no arrangement of {self.cfg.max_scene_tries} shows '
                         f'{target!r} in view and graspable (last: {rejected[-1]})')

    def grasp_axis(self, name: str) -> np.ndarray:
        """
        ``(2, 3)`` grasp-axis points of ``name`` in its own frame (metres), cached.

        The axis of its seed-0 top-down reference view (``auto_targets.object_frame_points``),
        as the targets and the oracle have it.
        """
        if name not in self._axis:
            from ccl_perception.sim.auto_targets import object_frame_points
            self._axis[name] = object_frame_points(self, name)[:2]
        return self._axis[name]

    def _reset_once(self, rng, seed, target, target_present, names, surface) -> SceneInfo:
        """One arrangement of :meth:`reset` from ``rng``."""
        with self.lock:
            if names is None:
                pool = [n for n in self.object_names if n != target]
                k = int(rng.integers(self.cfg.clutter[0], self.cfg.clutter[1] + 1))
                k = min(k, len(pool) + (target is not None and target_present))
                n_others = k - (1 if target is not None and target_present else 0)
                names = list(rng.choice(pool, size=min(n_others, len(pool)), replace=False))
                if target is not None and target_present:
                    names.insert(int(rng.integers(0, len(names) + 1)), target)
            self.robot.reset_home()
            mode = self.cfg.object_pose_mode
            if mode not in ('reference_face_up', 'random'):
                raise ValueError("object_pose_mode must be 'reference_face_up' or 'random', "
                                 f'got {mode!r}')
            if mode == 'reference_face_up':
                for n in names:
                    self.rest_pose(n)  # computed once per object (re-arranges the table)
            self.scene.restore_state(self._pristine)
            self.robot.reset_home()
            active = self.scene.arrange(rng, names=names)
            if mode == 'reference_face_up':
                active = self._face_up(active, rng)
            c = self.cfg
            look = np.append(rng.uniform(-c.look_at_jitter, c.look_at_jitter, 2), 0.0)
            cam = camera_from_angles(rng.uniform(*c.camera_distance),
                                     rng.uniform(*c.camera_elevation_deg),
                                     rng.uniform(*c.camera_azimuth_deg), look,
                                     c.width, c.height, c.fov_y_deg)
            self.set_camera(cam)
            self._set_surface(surface, cam)
            present = target is not None and target in active
            self.info = SceneInfo(int(seed), active, target, present, cam,
                                  surface if self._surfaces else '')
            return self.info

    def _set_surface(self, surface: str, camera) -> None:
        """Show table photo ``surface`` (v2); a glossy one is lit from the camera's mirror."""
        self._lighting = None
        if not self._surfaces:
            return
        self.scene.set_surface(self._surfaces[surface])
        if surface in self._glossy:
            from ccl_perception.sim.gloss import GLOSS, mirror_light
            from ccl_perception.sim.scene import photo_lighting
            self._lighting = {**photo_lighting(), 'direction': mirror_light(camera),
                              'gloss': dict(GLOSS)}

    def rest_pose(self, name: str) -> tuple:
        """Resting orientation (xyzw) and base height (m) of ``name`` in its seed-0 reference."""
        if name not in self._rest:
            with self.lock:
                self.scene.restore_state(self._pristine)
                self.scene.arrange(np.random.default_rng(0), names=[name],
                                   workspace_half=(0.02, 0.02))
                pos, quat = p.getBasePositionAndOrientation(self.body(name),
                                                            physicsClientId=self.client)
                self._rest[name] = (tuple(quat), float(pos[2]))
        return self._rest[name]

    def _face_up(self, names, rng) -> list:
        """Turn arranged objects to their reference resting face with a random yaw; settle."""
        for n in names:
            pos, _ = p.getBasePositionAndOrientation(self.body(n), physicsClientId=self.client)
            quat, z = self._rest[n]
            yaw = p.getQuaternionFromEuler((0.0, 0.0, float(rng.uniform(-math.pi, math.pi))))
            _, q = p.multiplyTransforms((0, 0, 0), yaw, (0, 0, 0), quat)
            p.resetBasePositionAndOrientation(self.body(n), (pos[0], pos[1], z + 0.005), q,
                                              physicsClientId=self.client)
            p.resetBaseVelocity(self.body(n), [0, 0, 0], [0, 0, 0], physicsClientId=self.client)
        self.robot.step(120)
        return [n for n in names
                if p.getBasePositionAndOrientation(self.body(n), physicsClientId=self.client)[0][2]
                > -0.01]

    def reference_view(self, name: str, seed: int = 0, elevation_deg: float = 90.0,
                       azimuth_deg: float = 0.0):
        """
        Render the paper's reference: ``name`` alone on the table seen straight from above.

        ``elevation_deg`` < 90 looks at it obliquely from ``azimuth_deg`` instead (further
        reference views of a multi-view target), from the same distance
        ``cfg.reference_height``.

        Returns:
            ``(RenderResult, Camera)``; the object is at a random pose (``seed``).
        """
        with self.lock:
            self.scene.restore_state(self._pristine)
            self.robot.reset_home()
            self.scene.arrange(np.random.default_rng(seed), names=[name],
                               workspace_half=(0.02, 0.02))
            pos = self.scene.object_poses([name])[name][:3, 3]
            cam = camera_from_angles(self.cfg.reference_height, elevation_deg, azimuth_deg,
                                     (pos[0], pos[1], 0.0), self.cfg.width, self.cfg.height,
                                     self.cfg.fov_y_deg)
            self.set_camera(cam)
            self._set_surface(self.cfg.surface, cam)
            self.info = SceneInfo(int(seed), [name], name, True, cam,
                                  self.cfg.surface if self._surfaces else '')
            return self.scene.render(cam), cam

    def render(self):
        """RGB (H, W, 3) uint8, depth (H, W) float32 m (NaN = none), segmentation ids."""
        with self.lock:
            return self.scene.render(self._camera, self._lighting)

    def close(self) -> None:
        self.scene.close()
