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
Grasp planner node: RGB-D frame + target -> 6D grasp pose, or a reason to abstain.

A thin adapter: the work is :class:`ccl_perception.grasp_pipeline.GraspPipeline`, targets
are resolved by :class:`ccl_perception.targets.TargetLibrary`. The planner owns its own
``DescriptorExtractor`` (no 64-channel image over DDS; descriptors exactly of the depth
frame they are matched in). Only the newest synchronised colour/depth pair is processed,
in a timer (``max_rate_hz``); camera_info: the latest one. Publishes ``grasp_pose``
(colour optical frame; gripper z approach, y closing), ``~/heatmap``, ``~/markers``,
``~/confidence``, ``~/status`` (``ok ...`` / ``abstain: <reason>``); serves
``~/reload_targets``. ``target`` is validated on set (a bad one is rejected with the
reason, the old one kept); ``tau`` defaults to the checkpoint's training temperature.
Topics, parameters and abstention reasons: docs/ros_interface.md.
"""

import threading

from ccl_perception.correspondence import DEFAULT_TAU
from ccl_perception.log_limit import LogLimiter
from ccl_perception.node_limits import (check_change, check_planner, PIPELINE_PARAMS,
                                        PLANNER_PARAMS, PLANNER_RUN_TIME)
from ccl_perception.nodes import (CONFIDENCE_TOPIC, declare_parameters, GRASP_POSE_TOPIC,
                                  HEATMAP_TOPIC, INFO_TOPIC, LatestFrame, load_extractor,
                                  MARKERS_TOPIC, MODEL_PARAMS, node_main, OUTPUT_QOS, param_values,
                                  RELOAD_TARGETS_SERVICE, SENSOR_QOS, shutdown_tolerant,
                                  STATUS_QOS, STATUS_TOPIC, subscribe_rgbd, watch_input)
from ccl_perception.nodes.messages import (grasp_markers, image_msg, pose_msg, pose_stamped,
                                           rgbd_from_msgs)
from ccl_perception.planner_state import PlannerState
from ccl_perception.planner_view import heatmap_image, status_text
from ccl_perception.targets import TargetLibrary
from geometry_msgs.msg import PoseStamped
from rcl_interfaces.msg import SetParametersResult
from rclpy.node import Node
from sensor_msgs.msg import CameraInfo, Image
from std_msgs.msg import Float32, String
from std_srvs.srv import Trigger
from visualization_msgs.msg import MarkerArray

NO_TARGET = 'no target set (ccl set-target <name>, or ros2 param set <planner> target <name>)'
#: Abstentions are logged when their kind changes, else at most this often; so are poses.
LOG_INTERVAL_S = 5.0
#: Node parameters besides the pipeline's :data:`PIPELINE_PARAMS` (node_limits).
PARAMS = {**MODEL_PARAMS, **PLANNER_PARAMS}


class GraspPlanner(Node):
    """Thin ROS adapter over :class:`ccl_perception.grasp_pipeline.GraspPipeline`."""

    def __init__(self, **kwargs):
        super().__init__('grasp_planner', **kwargs)
        declare_parameters(self, PARAMS)
        self._lock = threading.Lock()
        self.counts = {'frames': 0, 'poses': 0, 'abstained': 0, 'bad_input': 0}
        self._log_abstain, self._log_pose = LogLimiter(LOG_INTERVAL_S), LogLimiter(LOG_INTERVAL_S)
        extractor, self.load_error = load_extractor(self)
        tau = getattr(extractor, 'training_tau', None) or DEFAULT_TAU
        declare_parameters(self, {**PIPELINE_PARAMS, 'tau': tau})
        values = check_planner(param_values(self, {**PARAMS, **PIPELINE_PARAMS}))  # bad: no start
        config = {k: values[k] for k in PIPELINE_PARAMS}
        library = TargetLibrary(self.get_parameter('target_dir').value,
                                None if extractor is None else str(extractor.identity))
        for fn, why in library.reload().items():
            self.get_logger().warning(f'target {fn} not loaded: {why}')
        self.state = PlannerState(extractor, config, library, self.load_error)
        initial = self.get_parameter('target').value
        try:
            self.state.apply({'target': initial})
        except ValueError as e:
            self.get_logger().error(f'initial target {initial!r} rejected: {e}')
        self.add_on_set_parameters_callback(self._on_set_parameters)

        self.pub_pose = self.create_publisher(PoseStamped, GRASP_POSE_TOPIC, OUTPUT_QOS)
        self.pub_heatmap = self.create_publisher(Image, HEATMAP_TOPIC, OUTPUT_QOS)
        self.pub_markers = self.create_publisher(MarkerArray, MARKERS_TOPIC, OUTPUT_QOS)
        self.pub_conf = self.create_publisher(Float32, CONFIDENCE_TOPIC, STATUS_QOS)
        self.pub_status = self.create_publisher(String, STATUS_TOPIC, STATUS_QOS)
        self.mailbox, self.camera_info = LatestFrame(), None
        self.received = {'colour': 0, 'depth': 0, 'camera_info': 0}  # messages that arrived
        self._subs = subscribe_rgbd(self, lambda c, d: self.mailbox.put((c, d)),
                                    values['sync_slop'], values['sync_queue_size'],
                                    received=self.received)
        self.create_subscription(CameraInfo, INFO_TOPIC, self._on_info, SENSOR_QOS)
        self.create_service(Trigger, RELOAD_TARGETS_SERVICE,
                            shutdown_tolerant(self, self._on_reload))
        self.timer = self.create_timer(1.0 / values['max_rate_hz'],
                                       shutdown_tolerant(self, self._process))
        self.watchdog = watch_input(self, values['input_timeout_s'], lambda: {
            'synchronised colour+depth pair': self.mailbox.received, **self.received},
            self.pub_status, 'abstain: ')
        self.get_logger().info(f'grasp planner ready: tau={self.get_parameter("tau").value}, '
                               f'target={getattr(self.target, "name", None)!r}, '
                               f'{len(self.state.library.targets)} target(s) in the library')

    @property
    def pipeline(self):
        return self.state.pipeline

    @property
    def target(self):
        return self.state.target

    def _on_set_parameters(self, params):
        """Validate before the parameters are set; a rejected set keeps the old values."""
        new = {p.name: p.value for p in params}
        with self._lock:
            try:
                check_change(new, param_values(self, {**PARAMS, **PIPELINE_PARAMS}),
                             PLANNER_RUN_TIME, check_planner)
                note = self.state.apply(new)
            except ValueError as e:
                self.get_logger().warning(f'parameters {sorted(new)} rejected: {e}')
                return SetParametersResult(successful=False, reason=str(e))
        if note:
            self.get_logger().info(note)
        return SetParametersResult(successful=True)

    def _on_reload(self, request, response):
        with self._lock:
            errors = self.state.reload()
        response.success = not errors
        response.message = (f'loaded targets: {", ".join(self.state.library.names) or "none"}'
                            + ''.join(f'; {k}: {v}' for k, v in errors.items()))
        return response

    # ----------------------------------------------------------------- frames
    def _on_info(self, msg: CameraInfo):
        self.received['camera_info'] += 1
        self.camera_info = msg

    def _abstain(self, reason: str, header=None, bad_input=False, points_3d=None) -> None:
        self.counts['bad_input' if bad_input else 'abstained'] += 1
        self._log_abstain.warning(self.get_logger(), f'no grasp: {reason}')
        self.pub_status.publish(String(data=f'abstain: {reason}'))
        if header is not None:
            self.pub_markers.publish(grasp_markers(header, points_3d))

    def _process(self) -> None:
        item = self.mailbox.take()
        if item is None or not self.context.ok():  # nothing new, or shutting down
            return
        color, depth_msg = item
        self.counts['frames'] += 1
        if self.pipeline is None:
            return self._abstain(self.load_error)
        if self.target is None:  # checked again under the lock below
            return self._abstain(NO_TARGET)
        if self.camera_info is None:
            return self._abstain(f'no camera_info received on {INFO_TOPIC}', bad_input=True)
        try:
            rgb, depth, K = rgbd_from_msgs(color, depth_msg, self.camera_info)
        except ValueError as e:
            return self._abstain(f'bad input: {e}', color.header, bad_input=True)
        # Matching and publishing hold the lock that target/parameter changes take, so a pose
        # is only ever published for the target that is active when it is published.
        with self._lock:
            self._plan_and_publish(color.header, rgb, depth, K)

    def _plan_and_publish(self, header, rgb, depth, K) -> None:
        target = self.target
        if target is None:
            return self._abstain(NO_TARGET)
        try:
            result = self.pipeline.frame_to_pose(rgb, depth, K, target)
        except ValueError as e:
            return self._abstain(f'bad input: {e}', header, bad_input=True)
        except Exception as e:  # noqa: BLE001 - a failing frame must not take the node down
            self.get_logger().error(f'frame failed: {type(e).__name__}: {e}',
                                    throttle_duration_sec=1.0)
            return self._abstain(f'internal error: {type(e).__name__}: {e}', header)
        self.pub_conf.publish(Float32(data=float(result.confidence)))
        status = status_text(target.name, result)
        if self.get_parameter('publish_heatmap').value and result.match is not None:
            self.pub_heatmap.publish(image_msg(heatmap_image(rgb, K, result, status), 'rgb8',
                                               header))
        if not result.ok:
            return self._abstain(f'{target.name}: {result.reason}', header,
                                 points_3d=result.points_3d)
        g = result.pose
        msg = pose_stamped(pose_msg(position=g.position, quaternion=g.quaternion), header)
        self.pub_pose.publish(msg)
        self.pub_markers.publish(grasp_markers(header, result.points_3d, g, msg.pose))
        self.counts['poses'] += 1
        self.pub_status.publish(String(data=status))
        self._log_pose.info(self.get_logger(), f'grasp pose: {status[4:]}')


def main(args=None):
    return node_main(GraspPlanner, args, 'grasp_planner_node')


if __name__ == '__main__':
    raise SystemExit(main())
