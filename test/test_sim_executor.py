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

"""Simulated Panda grasp executor: real pybullet physics, outcomes measured not assumed."""
import math

from ccl_perception.executors.base import (check_transform, GraspResult, matrix_to_pose,
                                           pose_to_matrix)
from ccl_perception.executors.sim_executor import SimExecutorConfig, SimGraspExecutor
from ccl_perception.sim.robot import PandaRobot
import numpy as np
import pybullet as p
import pybullet_data
import pytest

BOX_HALF = (0.02, 0.02, 0.025)  # 4 x 4 x 5 cm, fits the 8 cm Panda stroke


def top_down(x, y, z, yaw=0.0):
    """Grasp frame looking straight down (z = world -z), fingers closing along yaw."""
    return pose_to_matrix([x, y, z], p.getQuaternionFromEuler((math.pi, 0.0, yaw)))


@pytest.fixture
def world():
    client = p.connect(p.DIRECT)
    p.setGravity(0, 0, -9.81, physicsClientId=client)
    p.loadURDF(pybullet_data.getDataPath() + '/plane.urdf', physicsClientId=client)
    col = p.createCollisionShape(p.GEOM_BOX, halfExtents=BOX_HALF, physicsClientId=client)
    box = p.createMultiBody(0.1, col, basePosition=[0.05, 0.10, BOX_HALF[2]],
                            physicsClientId=client)
    col2 = p.createCollisionShape(
        p.GEOM_CYLINDER,
        radius=0.02,
        height=0.06,
        physicsClientId=client)
    can = p.createMultiBody(0.1, col2, basePosition=[0.0, -0.15, 0.03], physicsClientId=client)
    robot = PandaRobot(client)
    for _ in range(50):
        p.stepSimulation(physicsClientId=client)
    yield client, robot, box, can
    p.disconnect(client)


def test_pose_matrix_round_trip_hand_values():
    # 90 deg about z: x -> y.  quaternion (0, 0, sin45, cos45).
    T = pose_to_matrix([1.0, 2.0, 3.0], [0.0, 0.0, math.sqrt(0.5), math.sqrt(0.5)])
    np.testing.assert_allclose(T[:3, :3], [[0, -1, 0], [1, 0, 0], [0, 0, 1]], atol=1e-12)
    pos, q = matrix_to_pose(T)
    np.testing.assert_allclose(pos, [1, 2, 3])
    np.testing.assert_allclose(q, [0, 0, math.sqrt(0.5), math.sqrt(0.5)], atol=1e-12)
    # 180 deg about x (trace = -1 branch)
    pos, q = matrix_to_pose(np.diag([1.0, -1.0, -1.0, 1.0]))
    np.testing.assert_allclose(np.abs(q), [1, 0, 0, 0], atol=1e-12)
    with pytest.raises(ValueError, match='zero'):
        pose_to_matrix([0, 0, 0], [0, 0, 0, 0])
    with pytest.raises(ValueError, match='orthonormal'):
        check_transform(np.diag([2.0, 1.0, 1.0, 1.0]))


def test_robot_reaches_a_pose(world):
    _, robot, _, _ = world
    quat = p.getQuaternionFromEuler((math.pi, 0.0, 0.4))
    assert robot.move_to([0.1, 0.0, 0.3], quat)
    pos, _ = robot.tcp_pose()
    assert np.linalg.norm(pos - [0.1, 0.0, 0.3]) < 0.004


def test_ground_truth_grasp_lifts_the_object(world):
    client, robot, box, can = world
    ex = SimGraspExecutor(robot)
    x, y, z = p.getBasePositionAndOrientation(box, physicsClientId=client)[0]
    # the planner's pose lies on the top surface; the executor goes grasp_depth deeper
    res = ex.execute(top_down(x, y, z + BOX_HALF[2], yaw=0.3), 'world', target_body=box)
    assert isinstance(res, GraspResult)
    assert res.success, res.to_json()
    assert res.reason == 'lifted' and res.stage == 'report'
    assert res.lift_m > SimExecutorConfig().min_lift
    # the fingers stopped on the 4 cm box (between 4 cm and the 4/cos(0.3) diagonal-ish + slack)
    assert 0.035 < res.gripper_width_m < 0.06
    assert box in res.details['held_bodies'] and can not in res.details['held_bodies']


def test_grasp_in_camera_frame_uses_registered_transform(world):
    client, robot, box, _ = world
    ex = SimGraspExecutor(robot)
    # camera 0.6 m above the origin looking down: optical z = world -z, x = world y, y = world x
    T_world_cam = np.eye(4)
    T_world_cam[:3, :3] = [[0, 1, 0], [1, 0, 0], [0, 0, -1]]
    T_world_cam[:3, 3] = [0.0, 0.0, 0.6]
    ex.set_frame('camera_color_optical_frame', T_world_cam)
    x, y, z = p.getBasePositionAndOrientation(box, physicsClientId=client)[0]
    T_world_grasp = top_down(x, y, z + BOX_HALF[2])
    T_cam_grasp = np.linalg.inv(T_world_cam) @ T_world_grasp
    res = ex.execute(T_cam_grasp, 'camera_color_optical_frame', target_body=box)
    assert res.success, res.to_json()
    with pytest.raises(ValueError, match='unknown frame'):
        ex.execute(T_cam_grasp, 'some_other_frame', target_body=box)


def test_grasp_at_empty_space_fails(world):
    client, robot, box, can = world
    ex = SimGraspExecutor(robot)
    res = ex.execute(top_down(0.15, -0.05, 0.04), 'world', target_body=box)
    assert not res.success
    assert res.reason == 'missed'
    assert res.gripper_width_m < SimExecutorConfig().empty_width
    assert abs(res.lift_m) < 0.01


def test_grasping_the_wrong_object_is_not_a_success(world):
    client, robot, box, can = world
    ex = SimGraspExecutor(robot)
    x, y, z = p.getBasePositionAndOrientation(can, physicsClientId=client)[0]
    res = ex.execute(top_down(x, y, z + 0.03), 'world', target_body=box)
    assert not res.success and res.reason == 'wrong_object', res.to_json()
    assert can in res.details['held_bodies']


def test_unreachable_pose_is_reported(world):
    _, robot, box, _ = world
    ex = SimGraspExecutor(robot, SimExecutorConfig(move_steps=300))
    res = ex.execute(top_down(1.5, 1.5, 0.03), 'world', target_body=box)
    assert not res.success and res.reason == 'unreachable' and res.stage == 'pre_grasp'


def test_bad_inputs_raise(world):
    _, robot, box, _ = world
    ex = SimGraspExecutor(robot)
    with pytest.raises(ValueError, match='not a dynamic body'):
        ex.execute(top_down(0, 0, 0.03), 'world', target_body=12345)
    with pytest.raises(ValueError, match='NaN'):
        ex.execute(np.full((4, 4), np.nan), 'world', target_body=box)


# ------------------------------------------------------------------ SimWorld and demo helpers
from ccl_perception.evaluation.grasp_trials import classify, summarise  # noqa: E402, I100
from ccl_perception.sim.auto_targets import auto_grasp_pixels  # noqa: E402
from ccl_perception.sim.robot import SimWorld, SimWorldConfig  # noqa: E402


def test_auto_grasp_pixels_pick_the_short_side_of_a_rectangle():
    mask = np.zeros((40, 60), bool)
    mask[10:20, 10:50] = True          # 40 px wide (x), 10 px tall (y): short side along y
    px = auto_grasp_pixels(mask, inset=0.6)
    assert px.shape == (5, 2)
    # centroid (29.5, 14.5); minor axis = y; extent -4.5..4.5 -> +-0.6*4.5 = +-2.7 px
    np.testing.assert_allclose(sorted(px[:2, 1]), [14.5 - 2.7, 14.5 + 2.7], atol=1e-6)
    np.testing.assert_allclose(px[:2, 0], [29.5, 29.5], atol=1e-6)
    np.testing.assert_allclose(px[2], [29.5, 14.5], atol=1e-6)
    # extra points along the long side: +-0.5*0.6*19.5 = +-5.85 px
    np.testing.assert_allclose(sorted(px[3:, 0]), [29.5 - 5.85, 29.5 + 5.85], atol=1e-6)
    assert all(mask[int(round(y)), int(round(x))] for x, y in px)
    with pytest.raises(ValueError, match='pixels'):
        auto_grasp_pixels(np.zeros((10, 10), bool))


def test_outcome_labels_and_summary():
    assert classify(True, False, False) == 'abstained'
    assert classify(True, True, True) == 'grasped'
    assert classify(True, True, False) == 'failed_grasp'
    assert classify(False, True, False) == 'false_grasp'   # any attempt without the target
    assert classify(False, False, False) == 'correct_abstention'
    trials = [{'present': True, 'outcome': o}
              for o in ('grasped', 'grasped', 'abstained', 'failed_grasp')]
    trials += [{'present': False, 'outcome': 'false_grasp'},
               {'present': False, 'outcome': 'correct_abstention'}]
    s = summarise(trials)
    assert s['success_rate'] == 0.5 and s['success_rate_when_attempted'] == 2 / 3
    assert s['false_grasps'] == 1 and s['false_grasp_rate'] == 0.5 and s['abstained'] == 1


@pytest.fixture(scope='module')
def sim_world():
    w = SimWorld(SimWorldConfig(width=64, height=48,
                                objects=('box_000', 'cylinder_001', 'ellipsoid_002',
                                         'cylinder_004'), clutter=(2, 3)))
    yield w
    w.close()


def test_world_reset_is_seeded_and_respects_target_presence(sim_world):
    a = sim_world.reset(11, target='box_000', target_present=True)
    pose_a = sim_world.scene.object_poses()
    eye_a = a.camera.world_from_camera.copy()
    b = sim_world.reset(11, target='box_000', target_present=True)
    assert a.objects == b.objects and 'box_000' in b.objects and b.target_present
    np.testing.assert_allclose(b.camera.world_from_camera, eye_a)
    for n, T in sim_world.scene.object_poses().items():
        np.testing.assert_allclose(T, pose_a[n], atol=1e-6)
    c = sim_world.reset(11, target='box_000', target_present=False)
    assert 'box_000' not in c.objects and not c.target_present
    with pytest.raises(ValueError, match='unknown target'):
        sim_world.reset(1, target='no_such_object')


def test_world_grasp_from_true_pose_in_camera_frame(sim_world):
    info = sim_world.reset(21, target='box_000', names=['box_000', 'cylinder_004'])
    T_obj = sim_world.scene.object_poses(['box_000'])['box_000']
    size = np.asarray(sim_world.scene.specs['box_000'].size)
    vertical = int(np.argmax(np.abs(T_obj[2, :3])))
    close_i = min((i for i in range(3) if i != vertical), key=lambda i: size[i])
    y = T_obj[:3, close_i] * [1, 1, 0]
    y /= np.linalg.norm(y)
    T = np.eye(4)
    T[:3, 1], T[:3, 2] = y, [0, 0, -1]
    T[:3, 0] = np.cross(T[:3, 1], T[:3, 2])
    T[:3, 3] = T_obj[:3, 3] + [0, 0, size[vertical] / 2]
    T_cam = info.camera.camera_from_world @ T
    from ccl_perception.executors.sim_executor import world_executor
    from ccl_perception.sim.robot import CAMERA_FRAME
    # composed executor: judged against the world's target, follows the world's camera
    res = world_executor(sim_world).execute(T_cam, CAMERA_FRAME)
    assert res.success and res.reason == 'lifted', res.to_json()
    # the reference view shows the object alone, straight from above
    render, cam = sim_world.reference_view('cylinder_004')
    ids = set(np.unique(render.segmentation)) - set(sim_world.scene.background_ids) - {-1}
    assert ids == {sim_world.body('cylinder_004')}
    np.testing.assert_allclose(cam.world_from_camera[:3, 2], [0, 0, -1], atol=1e-9)
