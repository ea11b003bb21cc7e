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
The demo's grasp stage over ROS 2: sim world -> grasp planner -> grasp executor, over DDS.

One process hosts the nodes of ``bringup`` (sim world, planner, executor) and a client node;
:class:`RosTrialRunner` drives one scene at a time through their topics and services, as a
user's script would, and labels the outcome with
:func:`ccl_perception.evaluation.grasp_trials.classify`.
"""
from __future__ import annotations

import json
import time

from ccl_perception.evaluation.grasp_trials import classify
from ccl_perception.model_settings import DEFAULT_DOWNSCALE


class RosTrialRunner:
    """
    Drives the ROS 2 nodes of one process: the demo's grasp stage.

    Starts sim world (+ hosted sim executor) and grasp planner from ``bringup.node_specs``
    and a client node, spun by one ``nodes.NodeRunner`` (a single-threaded executor on a
    background thread); per scene: set the target parameters, call ``/sim_world/reset``,
    take the planner's first frame after the reset (its ``~/heatmap`` carries the frame
    stamp), and if a ``grasp_pose`` with that stamp arrives start it with
    ``/grasp_executor/execute`` and wait for its outcome on ``/grasp_executor/result``.
    """

    def __init__(self, checkpoint: str, target_dir: str, world_config,
                 downscale: int = DEFAULT_DOWNSCALE, planner: dict = None):
        """
        Start the nodes.

        Args:
            checkpoint: the planner's model.
            target_dir: the planner's target library.
            world_config: ``SimWorldConfig`` of the simulated world (the sim world node gets a
                ``SimWorld`` built from it and closes it).
            downscale: the planner's ``downscale`` (camera -> model resolution).
            planner: grasp planner parameter overrides (``grasp_pipeline.DEFAULTS`` keys).
        """
        from ccl_perception.sim.robot import SimWorld
        from geometry_msgs.msg import PoseStamped
        from rclpy.parameter import Parameter
        from sensor_msgs.msg import Image
        from std_msgs.msg import String
        from std_srvs.srv import Trigger

        from ccl_perception import bringup
        from ccl_perception import nodes as n

        self._Parameter, self._Trigger = Parameter, Trigger
        specs = [s for s in bringup.node_specs({'checkpoint': checkpoint, 'target_dir': target_dir,
                                                'sim': 'true', 'executor_backend': 'sim',
                                                'downscale': str(int(downscale))})
                 if s.name not in ('descriptor_node', 'target_maker')]  # not needed: saves CPU
        for s in specs:
            if s.name == 'grasp_planner':
                s.parameters.update(planner or {})
        self.heatmaps, self.poses, self.status, self.results = [], [], [], []

        def factory(context):
            world = SimWorld(world_config)
            try:
                nodes = bringup.create_nodes(specs, context=context,
                                             extra_kwargs={'sim_world': {'world': world}})
            except Exception:
                world.close()
                raise
            self._world = world
            # the default, set anyway: a config with auto_execute true would grasp twice
            nodes['grasp_executor'].set_parameters([Parameter('auto_execute', value=False)])
            client = nodes['ccl_demo'] = rclpy_create_node('ccl_demo', context)
            client.create_subscription(Image, n.private('grasp_planner', n.HEATMAP_TOPIC),
                                       self.heatmaps.append, n.OUTPUT_QOS)
            client.create_subscription(
                PoseStamped,
                '/' + n.GRASP_POSE_TOPIC,
                self.poses.append,
                10)
            client.create_subscription(String, n.private('grasp_planner', n.STATUS_TOPIC),
                                       lambda m: self.status.append(m.data), n.STATUS_QOS)
            client.create_subscription(String, n.private('grasp_executor', n.RESULT_TOPIC),
                                       lambda m: self.results.append(json.loads(m.data)),
                                       n.LATCHED_QOS)
            self.reset_cli = client.create_client(Trigger, n.private('sim_world', n.RESET_SERVICE))
            self.exec_cli = client.create_client(Trigger, n.private('grasp_executor',
                                                                    n.EXECUTE_SERVICE))
            return nodes

        def rclpy_create_node(name, context):
            import rclpy
            return rclpy.create_node(name, context=context)

        # built and spun on one thread: the sim world renders with an EGL context that is
        # current only in the thread that created it
        self.runner = n.NodeRunner.start_in_background(factory)
        self.nodes = self.runner.nodes
        for cli in (self.reset_cli, self.exec_cli):
            if not cli.wait_for_service(timeout_sec=30.0):
                raise RuntimeError(f'service {cli.srv_name} not available')

    def _call(self, cli, timeout: float):
        fut = cli.call_async(self._Trigger.Request())
        end = time.monotonic() + timeout
        while not fut.done():
            if time.monotonic() > end:
                raise RuntimeError(f'{cli.srv_name} did not answer within {timeout:.0f} s')
            time.sleep(0.02)
        return fut.result()

    def trial(self, name: str, present: bool, timeout: float, seed: int,
              surface: str = None) -> dict:
        """
        One scene: its outcome (``classify``), the planner's reason, the grasp report.

        ``surface``: the sim world's table photo for the scene (None: the world's own).
        """
        from ccl_perception import image_conversion as ic
        from ccl_perception.nodes.messages import stamp_ns
        P = self._Parameter
        res = self.nodes['grasp_planner'].set_parameters([P('target', value=name)])[0]
        if not res.successful:
            raise RuntimeError(f'planner refused target {name!r}: {res.reason}')
        self.nodes['sim_world'].set_parameters([P('target', value=name),
                                                P('seed', value=int(seed)),
                                                P('target_present', value=bool(present)),
                                                P('surface', value=surface or '')])
        # a 'visible' world may try several arrangements before the target is in view
        resp = self._call(self.reset_cli, max(30.0, timeout))
        if not resp.success:
            raise RuntimeError(f'reset failed: {resp.message}')
        scene = json.loads(resp.message)
        t_scene = int(scene['camera_stamp_ns'])
        end = time.monotonic() + timeout
        hm = None
        while time.monotonic() < end and hm is None:
            hm = next((m for m in list(self.heatmaps)
                       if stamp_ns(m.header.stamp) >= t_scene), None)
            time.sleep(0.02)
        trial = {'seed': scene['seed'], 'target': name, 'present': bool(scene['target_present']),
                 'objects': scene['objects'], 'surface': scene.get('surface', '')}
        if hm is None:
            trial.update(outcome='timeout', planner=(
                self.status[-1] if self.status else 'no status'))
            return trial
        s_frame = stamp_ns(hm.header.stamp)
        trial['heatmap_rgb'] = ic.image_to_numpy(hm, 'rgb8')
        pose = None
        end = time.monotonic() + 1.0
        while time.monotonic() < end and pose is None:
            pose = next((m for m in list(self.poses) if stamp_ns(m.header.stamp) == s_frame), None)
            time.sleep(0.02)
        executed, success = False, False
        if pose is None:
            trial['planner'] = next((s for s in reversed(self.status) if s.startswith('abstain')),
                                    'abstained')
        else:
            trial['planner'] = 'pose'
            g = self._execute()
            if g is None:  # the executor never got this scene's pose
                trial.update(outcome='timeout', planner='pose not executed')
                self.heatmaps.clear()
                self.poses.clear()
                return trial
            trial['grasp'] = g
            executed, success = True, bool(g.get('success'))
        self.heatmaps.clear()
        self.poses.clear()
        trial['outcome'] = classify(trial['present'], executed, success)
        return trial

    def _execute(self, timeout: float = 120.0):
        """
        Start the executor's last pose with ``~/execute``; wait for the outcome on ``~/result``.

        None: it was not run.
        """
        n_before = len(self.results)
        r = None
        for _ in range(10):  # the executor may not have received this scene's pose yet
            r = self._call(self.exec_cli, 30.0)
            if r.success or not r.message.startswith(('stale', 'no grasp pose')):
                break
            time.sleep(0.2)
        if r is None or not r.success:
            return None
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            if len(self.results) > n_before:
                return self.results[n_before]
            time.sleep(0.05)
        return None

    def close(self) -> None:
        """Stop the nodes, then close the simulated world."""
        self.runner.close()
        world = getattr(self, '_world', None)
        if world is not None:
            world.close()
