"""Simulated Franka Emika Panda with its parallel gripper, in an existing pybullet world.

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

import math
import os
from dataclasses import dataclass, field

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
    tcp_offset: float = -0.012        # grasptarget -> centre of the finger pads (along z; 17 mm above the tips)
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
    """A Panda arm + hand inside pybullet client ``client``.

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
        """(7,) joint angles putting the TCP at world ``pos`` (m) / ``quat`` (xyzw).

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
        """Drive the TCP to a world pose with joint position control and physics.

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
