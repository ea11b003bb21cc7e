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
Grasp executor node over real DDS with the simulated Panda (no mocks).

By default the executor moves only on request: a received pose is kept, ``~/execute``
starts it, one request is one grasp (issue 20: planning separate from moving).
"""
import json
import time

import numpy as np
import pytest

rclpy = pytest.importorskip('rclpy')
from ccl_perception.executors.base import matrix_to_pose  # noqa: E402, I100
from ccl_perception.executors.sim_executor import world_executor  # noqa: E402
from ccl_perception.nodes import NodeRunner  # noqa: E402
from ccl_perception.nodes.grasp_executor_node import GraspExecutorNode  # noqa: E402
from ccl_perception.sim.robot import CAMERA_FRAME, SimWorld, SimWorldConfig  # noqa: E402
from geometry_msgs.msg import PoseStamped  # noqa: E402
from polling import wait_for  # noqa: E402  (test/polling.py)
from rclpy.qos import DurabilityPolicy, QoSProfile  # noqa: E402
from std_msgs.msg import String  # noqa: E402
from std_srvs.srv import Trigger  # noqa: E402

OBJECTS = ('box_000', 'ellipsoid_002', 'cylinder_004')


def box_grasp_world(world, name):
    """
    Top-down grasp of a resting box from its true pose (world frame, 4x4).

    Closing axis = its shorter horizontal side, at the centre of its top face like the planner's.
    """
    T_obj = world.scene.object_poses([name])[name]
    size = np.asarray(world.scene.specs[name].size)
    R = T_obj[:3, :3]
    vertical = int(np.argmax(np.abs(R[2, :])))
    horizontal = [i for i in range(3) if i != vertical]
    close_i = min(horizontal, key=lambda i: size[i])
    y = R[:, close_i].copy()
    y[2] = 0.0
    y /= np.linalg.norm(y)
    z = np.array([0.0, 0.0, -1.0])
    T = np.eye(4)
    top = T_obj[:3, 3] + np.array([0.0, 0.0, size[vertical] / 2])
    T[:3, 0], T[:3, 1], T[:3, 2], T[:3, 3] = np.cross(y, z), y, z, top
    return T


def to_msg(T, frame, stamp):
    pos, q = matrix_to_pose(T)
    m = PoseStamped()
    m.header.frame_id, m.header.stamp = frame, stamp
    m.pose.position.x, m.pose.position.y, m.pose.position.z = (float(v) for v in pos)
    m.pose.orientation.x, m.pose.orientation.y, m.pose.orientation.z, m.pose.orientation.w = (
        float(v) for v in q)
    return m


@pytest.fixture(scope='module')
def ros():
    """
    Executor node composed on a SimWorld + a client node, one single-threaded executor.

    The executor is nodes.NodeRunner, as every process runs them.
    """
    world = SimWorld(SimWorldConfig(width=64, height=48, objects=OBJECTS))
    world.reset(3, target='box_000', names=list(OBJECTS))
    results = []
    parts = {}

    def factory(context):
        node = GraspExecutorNode(executor=world_executor(world), context=context)
        client_node = rclpy.create_node('executor_test_client', context=context)
        qos = QoSProfile(depth=10, durability=DurabilityPolicy.TRANSIENT_LOCAL)
        client_node.create_subscription(String, '/grasp_executor/result',
                                        lambda m: results.append(json.loads(m.data)), qos)
        parts['pub'] = client_node.create_publisher(PoseStamped, 'grasp_pose', 5)
        parts['node'], parts['client'] = node, client_node
        return [node, client_node]

    runner = NodeRunner(factory).spin_in_background()
    yield world, parts['node'], parts['client'], parts['pub'], results
    runner.close()
    world.close()


def trigger_client(client, name):
    cli = client.create_client(Trigger, name)
    assert cli.wait_for_service(timeout_sec=10.0)
    return cli


def trigger(cli, timeout=20.0):
    fut = cli.call_async(Trigger.Request())
    assert wait_for(fut.done, timeout)
    return fut.result()


def call(client, name, timeout=20.0):
    return trigger(trigger_client(client, name), timeout)


def deliver(pub, msg, node):
    """Publish ``msg`` until the executor node has received it (DDS discovery takes a moment)."""
    end = time.monotonic() + 20.0
    while time.monotonic() < end:
        if pub.get_subscription_count() > 0:
            pub.publish(msg)
            if wait_for(lambda: node._last_pose is not None
                        and node._last_pose.header.stamp == msg.header.stamp, timeout=2.0):
                return True
        time.sleep(0.1)
    return False


def execute(client, results, timeout=60.0):
    """Call ``~/execute`` (it must accept) and return the one result it brings."""
    n0 = len(results)
    resp = call(client, '/grasp_executor/execute')
    assert resp.success is True and resp.message.startswith('accepted'), resp.message
    assert wait_for(lambda: len(results) > n0, timeout), 'no result on ~/result'
    return results[n0]


def publish_until_received(pub, msg, results, n_before, node, client):
    """Deliver ``msg`` and request its execution; True when a result came."""
    if not deliver(pub, msg, node):
        return False
    execute(client, results)
    return len(results) > n_before


def test_pose_in_camera_frame_is_executed_and_reported(ros):
    world, node, client, pub, results = ros
    world.reset(3, target='box_000', names=list(OBJECTS))
    T_world = box_grasp_world(world, 'box_000')
    T_cam = np.linalg.inv(world.camera.world_from_camera) @ T_world
    n0 = len(results)
    msg = to_msg(T_cam, CAMERA_FRAME, client.get_clock().now().to_msg())
    assert publish_until_received(pub, msg, results, n0, node, client), 'no result on ~/result'
    res = results[n0]
    assert res['success'] is True, res
    assert res['reason'] == 'lifted' and res['backend'] == 'sim'
    assert res['lift_m'] > 0.05
    assert res['frame_id'] == CAMERA_FRAME


def test_pose_at_empty_space_reports_failure(ros):
    world, node, client, pub, results = ros
    world.reset(3, target='box_000', names=list(OBJECTS))
    occupied = [world.scene.object_poses([n])[n][:3, 3] for n in OBJECTS]
    # a free spot on the table, at least 8 cm from every object
    spot = next(np.array([x, y, 0.05]) for x in np.linspace(-0.15, 0.15, 7)
                for y in np.linspace(-0.2, 0.2, 9)
                if all(np.linalg.norm(np.array([x, y]) - o[:2]) > 0.08 for o in occupied))
    T = np.eye(4)
    T[:3, :3] = np.diag([1.0, -1.0, -1.0])
    T[:3, 3] = spot
    n0 = len(results)
    assert publish_until_received(pub, to_msg(T, 'world', client.get_clock().now().to_msg()),
                                  results, n0, node, client)
    res = results[n0]
    assert res['success'] is False and res['reason'] == 'missed', res


def test_invalid_pose_reports_error_and_trigger_reexecutes(ros):
    world, node, client, pub, results = ros
    msg = to_msg(np.eye(4), CAMERA_FRAME, client.get_clock().now().to_msg())
    msg.pose.orientation.w = 0.0  # zero quaternion
    n0 = len(results)
    assert publish_until_received(pub, msg, results, n0, node, client)
    assert results[n0]['reason'] == 'error' and 'zero' in results[n0]['details']['error']
    # ~/execute re-runs the last pose, action-style: accepted at once, outcome on ~/result
    n1 = len(results)
    resp = call(client, '/grasp_executor/execute')
    assert resp.success is True and resp.message.startswith('accepted'), resp.message
    assert wait_for(lambda: len(results) > n1, 20.0)
    assert results[n1]['reason'] == 'error'
    assert node.counts['invalid'] >= 2


def test_executor_keeps_serving_while_a_grasp_runs(ros):
    """
    The grasp runs on the worker thread: a service call made during it is answered.

    The answer ('busy') comes while the grasp is still running, on the same single-threaded
    executor.
    """
    world, node, client, pub, results = ros
    world.reset(3, target='box_000', names=list(OBJECTS))
    T_cam = np.linalg.inv(world.camera.world_from_camera) @ box_grasp_world(world, 'box_000')
    execute_cli = trigger_client(client, '/grasp_executor/execute')
    assert deliver(pub, to_msg(T_cam, CAMERA_FRAME, client.get_clock().now().to_msg()), node)
    n0 = len(results)
    # A simulated grasp takes ~0.3 s, less than a service round trip on a loaded machine:
    # holding the world's lock (the grasp takes it for its physics) keeps the grasp running
    # on the worker thread until the second call has been answered.
    with world.lock:
        first = trigger(execute_cli)
        assert first.success and first.message.startswith('accepted'), first.message
        assert wait_for(lambda: node.worker.busy, 15.0), 'the grasp did not start'
        busy_before = node.busy_skipped
        resp = trigger(execute_cli)
        still_running = node.worker.busy
    assert resp.success is False and resp.message.startswith('busy'), resp.message
    assert still_running and node.busy_skipped == busy_before + 1
    assert wait_for(lambda: len(results) > n0, 60.0)
    assert results[n0]['success'] is True, results[n0]


def test_sim_backend_without_world_is_refused():
    with pytest.raises(ValueError, match='sim_world_node'):
        NodeRunner(lambda context: GraspExecutorNode(executor=None, context=context))


def test_pose_older_than_the_camera_pose_is_skipped(ros):
    world, node, client, pub, results = ros
    cam_pub = client.create_publisher(PoseStamped, 'camera/pose', QoSProfile(
        depth=1, durability=DurabilityPolicy.TRANSIENT_LOCAL))
    now = client.get_clock().now().to_msg()
    cam_msg = to_msg(world.camera.world_from_camera, 'world', now)
    end = time.monotonic() + 15.0
    while node._camera_stamp_ns < now.sec * 1_000_000_000 + now.nanosec and time.monotonic() < end:
        cam_pub.publish(cam_msg)
        time.sleep(0.1)
    assert node._camera_stamp_ns == now.sec * 1_000_000_000 + now.nanosec
    old = to_msg(np.eye(4), CAMERA_FRAME, now)
    old.header.stamp.sec -= 1  # one second before the viewpoint changed
    n_stale, n_results = node.counts['stale_poses'], len(results)
    end = time.monotonic() + 15.0
    while node.counts['stale_poses'] == n_stale and time.monotonic() < end:
        pub.publish(old)
        time.sleep(0.1)
    assert node.counts['stale_poses'] > n_stale
    time.sleep(0.3)
    assert len(results) == n_results  # nothing was executed
    resp = call(client, '/grasp_executor/execute')
    assert resp.success is False and resp.message.startswith('stale'), resp.message


# ------------------------------------------------------------- execute on request (issue 20)
def test_no_motion_without_a_request_and_one_request_is_one_grasp(ros):
    """
    Poses arrive as the planner sends them, one per frame: the arm stays still.

    Then one ``~/execute`` is exactly one grasp, however many poses arrive after it.
    """
    world, node, client, pub, results = ros
    assert node.get_parameter('auto_execute').value is False  # the default, not set here
    world.reset(3, target='box_000', names=list(OBJECTS))
    T_cam = np.linalg.inv(world.camera.world_from_camera) @ box_grasp_world(world, 'box_000')
    joints = world.robot.arm_joints().copy()
    box = world.scene.object_poses(['box_000'])['box_000'].copy()
    n_results, executed = len(results), node.counts['executed']
    for _ in range(3):  # three planner frames
        assert deliver(pub, to_msg(T_cam, CAMERA_FRAME, client.get_clock().now().to_msg()), node)
    time.sleep(1.0)  # room for a grasp that should not happen
    assert len(results) == n_results and node.counts['executed'] == executed
    assert not node.worker.busy
    np.testing.assert_allclose(world.robot.arm_joints(), joints, atol=1e-9)  # no motion
    np.testing.assert_allclose(world.scene.object_poses(['box_000'])['box_000'], box, atol=1e-9)
    res = execute(client, results)  # one request
    assert res['success'] is True and res['reason'] == 'lifted', res
    for _ in range(2):  # the planner keeps publishing after the grasp
        assert deliver(pub, to_msg(T_cam, CAMERA_FRAME, client.get_clock().now().to_msg()), node)
    time.sleep(1.5)
    assert len(results) == n_results + 1 and node.counts['executed'] == executed + 1


def test_auto_execute_is_an_explicit_opt_in(ros):
    """With ``auto_execute`` set true a pose moves the arm on arrival, without a request."""
    from rclpy.parameter import Parameter
    world, node, client, pub, results = ros
    world.reset(3, target='box_000', names=list(OBJECTS))
    T_cam = np.linalg.inv(world.camera.world_from_camera) @ box_grasp_world(world, 'box_000')
    assert node.set_parameters([Parameter('auto_execute', value=True)])[0].successful
    try:
        n0 = len(results)
        assert deliver(pub, to_msg(T_cam, CAMERA_FRAME, client.get_clock().now().to_msg()), node)
        assert wait_for(lambda: len(results) > n0, 60.0), 'auto_execute did not execute'
        assert results[n0]['success'] is True, results[n0]
    finally:
        assert node.set_parameters([Parameter('auto_execute', value=False)])[0].successful


class RecordingArm:
    """An arm for the MoveIt backend's node that records what it is asked to execute."""

    def __init__(self):
        from ccl_perception.executors.base import MotionConfig
        self.cfg = MotionConfig()
        self.executed = []

    def set_frame(self, name, T):
        pass

    def execute(self, T, frame):
        from ccl_perception.executors.base import GraspResult
        self.executed.append((np.array(T), frame))
        return GraspResult(True, 'lifted', 'report', backend='moveit')


def test_moveit_backend_also_moves_only_on_request():
    """``backend: moveit`` (the real-arm backend) has the same default, over DDS."""
    from rclpy.parameter import Parameter
    arm, results, parts = RecordingArm(), [], {}

    def factory(context):
        node = GraspExecutorNode(
            executor=arm, context=context,
            cli_args=['--ros-args', '-r', '__node:=grasp_executor_moveit'],
            parameter_overrides=[Parameter('backend', value='moveit')])
        client = rclpy.create_node('executor_moveit_client', context=context)
        qos = QoSProfile(depth=10, durability=DurabilityPolicy.TRANSIENT_LOCAL)
        client.create_subscription(String, '/grasp_executor_moveit/result',
                                   lambda m: results.append(json.loads(m.data)), qos)
        parts.update(node=node, client=client,
                     pub=client.create_publisher(PoseStamped, 'grasp_pose', 5))
        return [node, client]

    runner = NodeRunner(factory).spin_in_background()
    try:
        node, client = parts['node'], parts['client']
        assert node.backend == 'moveit' and node.get_parameter('auto_execute').value is False
        for _ in range(3):
            assert deliver(parts['pub'], to_msg(np.eye(4), CAMERA_FRAME,
                                                client.get_clock().now().to_msg()), node)
        time.sleep(1.0)
        assert arm.executed == [] and results == []
        resp = call(client, '/grasp_executor_moveit/execute')
        assert resp.success and resp.message.startswith('accepted'), resp.message
        assert wait_for(lambda: len(results) == 1, 20.0)
        time.sleep(1.0)
        assert len(arm.executed) == 1 and len(results) == 1
        assert results[0]['backend'] == 'moveit' and arm.executed[0][1] == CAMERA_FRAME
    finally:
        runner.close()
