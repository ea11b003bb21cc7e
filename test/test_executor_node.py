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

"""Grasp executor node over real DDS with the simulated Panda (no mocks)."""
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


def publish_until_received(pub, msg, results, n_before):
    # DDS discovery takes a fraction of a second: publish until the node answers once.
    end = time.monotonic() + 20.0
    while time.monotonic() < end and len(results) <= n_before:
        if pub.get_subscription_count() > 0:
            pub.publish(msg)
            if wait_for(lambda: len(results) > n_before, timeout=15.0):
                break
        time.sleep(0.1)
    return len(results) > n_before


def test_pose_in_camera_frame_is_executed_and_reported(ros):
    world, node, client, pub, results = ros
    world.reset(3, target='box_000', names=list(OBJECTS))
    T_world = box_grasp_world(world, 'box_000')
    T_cam = np.linalg.inv(world.camera.world_from_camera) @ T_world
    n0 = len(results)
    msg = to_msg(T_cam, CAMERA_FRAME, client.get_clock().now().to_msg())
    assert publish_until_received(pub, msg, results, n0), 'no result on ~/result'
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
                                  results, n0)
    res = results[n0]
    assert res['success'] is False and res['reason'] == 'missed', res


def test_invalid_pose_reports_error_and_trigger_reexecutes(ros):
    world, node, client, pub, results = ros
    msg = to_msg(np.eye(4), CAMERA_FRAME, client.get_clock().now().to_msg())
    msg.pose.orientation.w = 0.0  # zero quaternion
    n0 = len(results)
    assert publish_until_received(pub, msg, results, n0)
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
    execute = trigger_client(client, '/grasp_executor/execute')
    n0 = len(results)
    # A simulated grasp takes ~0.3 s, less than a service round trip on a loaded machine:
    # holding the world's lock (the grasp takes it for its physics) keeps the grasp running
    # on the worker thread until the call has been answered.
    with world.lock:
        pub.publish(to_msg(T_cam, CAMERA_FRAME, client.get_clock().now().to_msg()))
        assert wait_for(lambda: node.worker.busy, 15.0), 'the grasp did not start'
        busy_before = node.busy_skipped
        resp = trigger(execute)
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
