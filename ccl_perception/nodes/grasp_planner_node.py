"""Grasp planner node: RGB-D frame + target -> 6D grasp pose, or a reason to abstain.

Design choice: the planner owns its own ``DescriptorExtractor`` rather than subscribing
to the descriptor node. That is the lowest latency (no 64-channel image over DDS) and
keeps the descriptors exactly synchronised with the depth frame they are matched in;
the descriptor node is for visualisation and other consumers.

Interface (full details and commands in docs/ros_interface.md):

* Subscribes (sensor-data QoS): ``camera/color/image_raw``,
  ``camera/aligned_depth_to_color/image_raw`` (16UC1 mm or 32FC1 m; approximately
  time-synchronised with colour), ``camera/color/camera_info`` (latest one is used:
  intrinsics are static per camera mode).
* Publishes: ``grasp_pose`` (geometry_msgs/PoseStamped in the colour optical frame,
  gripper frame z = approach, y = closing axis), ``~/heatmap`` (rgb8 overlay),
  ``~/markers`` (visualization_msgs/MarkerArray: keypoints, grasp axis, gripper),
  ``~/confidence`` (std_msgs/Float32), ``~/status`` (std_msgs/String: ``ok ...`` or
  ``abstain: <reason>``).
* Parameters: ``target`` (name in ``target_dir`` or a ``.npz`` path; validated on set,
  a bad one is rejected with the reason and the old one kept), ``target_dir``, model
  and pipeline knobs (:data:`ccl_perception.grasp_pipeline.DEFAULTS`).
* Services: ``~/reload_targets`` (std_srvs/Trigger) re-reads ``target_dir``.

Only the newest synchronised frame is processed, in a timer (``max_rate_hz``).
"""

import os
import threading

import numpy as np
from geometry_msgs.msg import Point, PoseStamped
from rcl_interfaces.msg import SetParametersResult
from rclpy.callback_groups import MutuallyExclusiveCallbackGroup, ReentrantCallbackGroup
from rclpy.node import Node
from sensor_msgs.msg import CameraInfo, Image
from std_msgs.msg import ColorRGBA, Float32, String
from std_srvs.srv import Trigger
from visualization_msgs.msg import Marker, MarkerArray

from ccl_perception import grasp_pipeline, image_conversion as ic, targets as tg
from ccl_perception.nodes import (INFO_TOPIC, OUTPUT_QOS, SENSOR_QOS, STATUS_QOS, LatestFrame, declare_parameters,
                                  run_node, shutdown_tolerant, subscribe_rgbd)

NO_TARGET = 'no target set (ros2 param set <planner> target <name>)'

PARAMS = {
    'checkpoint': '',           # trained model (.pt); required
    'device': 'cpu',            # 'cpu' or 'cuda[:i]'
    'backend': 'torch',         # 'torch' or 'onnx'
    'target': '',               # target name in target_dir, or path to a .npz; '' = none
    'target_dir': '',           # directory of target .npz files (make_target output)
    'max_rate_hz': 15.0,        # upper bound of processed frames per second
    'sync_slop': 0.02,          # colour/depth stamp tolerance, seconds
    'sync_queue_size': 5,       # messages kept per stream for synchronisation
    'publish_heatmap': True,
    **grasp_pipeline.DEFAULTS,
}


class GraspPlanner(Node):
    """Thin ROS adapter over :class:`ccl_perception.grasp_pipeline.GraspPipeline`."""

    def __init__(self, **kwargs):
        super().__init__('grasp_planner', **kwargs)
        declare_parameters(self, PARAMS)
        self._lock = threading.Lock()
        self.counts = {'frames': 0, 'poses': 0, 'abstained': 0, 'bad_input': 0}
        self.pipeline = None
        self.load_error = ''
        self.library, self.target = {}, None
        try:
            from ccl_perception.inference import DescriptorExtractor
            ck = self.get_parameter('checkpoint').value
            if not ck:
                raise ValueError("parameter 'checkpoint' is empty")
            extractor = DescriptorExtractor(ck, device=self.get_parameter('device').value,
                                            backend=self.get_parameter('backend').value)
            self.pipeline = grasp_pipeline.GraspPipeline(extractor, self._pipeline_config({}))
        except Exception as e:  # noqa: BLE001 - stay alive, report on ~/status
            self.load_error = f'model not loaded: {e}'
            self.get_logger().error(self.load_error)
        self._reload_library(self.get_parameter('target_dir').value)
        initial = self.get_parameter('target').value
        if initial:
            ok, reason, target = self._resolve_target(initial, self.get_parameter('target_dir').value)
            if ok:
                self.target = target
            else:
                self.get_logger().error(f'initial target rejected: {reason}')
        self.add_on_set_parameters_callback(self._on_set_parameters)

        self.pub_pose = self.create_publisher(PoseStamped, 'grasp_pose', OUTPUT_QOS)
        self.pub_heatmap = self.create_publisher(Image, '~/heatmap', OUTPUT_QOS)
        self.pub_markers = self.create_publisher(MarkerArray, '~/markers', OUTPUT_QOS)
        self.pub_conf = self.create_publisher(Float32, '~/confidence', STATUS_QOS)
        self.pub_status = self.create_publisher(String, '~/status', STATUS_QOS)
        self.mailbox = LatestFrame()
        self.camera_info = None
        inputs = ReentrantCallbackGroup()
        self._subs = subscribe_rgbd(self, lambda c, d: self.mailbox.put((c, d)),
                                    float(self.get_parameter('sync_slop').value),
                                    int(self.get_parameter('sync_queue_size').value), inputs)
        self.create_subscription(CameraInfo, INFO_TOPIC, self._on_info, SENSOR_QOS, callback_group=inputs)
        self.create_service(Trigger, '~/reload_targets', self._on_reload, callback_group=inputs)
        rate = max(float(self.get_parameter('max_rate_hz').value), 0.1)
        self.timer = self.create_timer(1.0 / rate, shutdown_tolerant(self, self._process), callback_group=MutuallyExclusiveCallbackGroup())
        self.get_logger().info(f'grasp planner ready; target={getattr(self.target, "name", None)!r}, '
                               f'{len(self.library)} target(s) in library')

    # ----------------------------------------------------------------- targets
    def _identity(self):
        return None if self.pipeline is None else str(self.pipeline.extractor.identity)

    def _load_library(self, target_dir: str):
        """``target_dir`` -> ``({name: Target}, {file: reason})``; logs the files that failed."""
        if not target_dir:
            return {}, {}
        lib, errors = tg.load_library(target_dir, self._identity())
        for fn, why in errors.items():
            self.get_logger().warning(f'target {fn} not loaded: {why}')
        return lib, errors

    def _reload_library(self, target_dir: str):
        self.library, errors = self._load_library(target_dir)
        return errors

    def _resolve_target(self, spec: str, target_dir: str, library=None):
        """``spec`` -> ``(ok, reason, Target or None)``; never raises."""
        library = self.library if library is None else library
        if not spec:
            return True, 'target cleared', None
        if self.pipeline is None:
            return False, self.load_error, None
        if spec in library:
            return True, f'target {spec!r} from the library', library[spec]
        path = spec if os.path.isabs(spec) or not target_dir else os.path.join(target_dir, spec)
        if not path.endswith('.npz'):
            known = ', '.join(sorted(library)) or 'none'
            return False, f'unknown target {spec!r} (library {target_dir!r} has: {known})', None
        try:
            return True, f'target file {path}', tg.load_target(path, self._identity())
        except tg.TargetError as e:
            return False, str(e), None

    def _pipeline_config(self, overrides: dict) -> dict:
        cfg = {k: self.get_parameter(k).value for k in grasp_pipeline.DEFAULTS}
        cfg.update({k: v for k, v in overrides.items() if k in grasp_pipeline.DEFAULTS})
        return grasp_pipeline.merge_config(cfg)

    def _on_set_parameters(self, params):
        """Validate before the parameters are set; a rejected set keeps the old values."""
        new = {p.name: p.value for p in params}
        fixed = {'checkpoint', 'device', 'backend', 'max_rate_hz', 'sync_slop', 'sync_queue_size'} & set(new)
        if fixed:
            return SetParametersResult(successful=False,
                                       reason=f'{", ".join(sorted(fixed))} can only be set at start-up')
        with self._lock:
            try:
                cfg = self._pipeline_config(new)
            except ValueError as e:
                return SetParametersResult(successful=False, reason=str(e))
            target_dir = new.get('target_dir', self.get_parameter('target_dir').value)
            library = self.library
            if 'target_dir' in new:
                if target_dir and not os.path.isdir(target_dir):
                    return SetParametersResult(successful=False,
                                               reason=f'target directory {target_dir!r} does not exist')
                library, _ = self._load_library(target_dir)
            target = self.target
            if 'target' in new:
                ok, reason, target = self._resolve_target(new['target'], target_dir, library)
                if not ok:
                    self.get_logger().warning(f'target {new["target"]!r} rejected: {reason}')
                    return SetParametersResult(successful=False, reason=reason)
                self.get_logger().info(f'target set: {reason}')
            # commit only now: a rejected call changes nothing
            self.library, self.target = library, target
            if self.pipeline is not None:
                self.pipeline.config = cfg
                self.pipeline.matcher.tau = cfg['tau']
                self.pipeline.matcher.confidence_scale_px = cfg['confidence_scale_px']
        return SetParametersResult(successful=True)

    def _on_reload(self, request, response):
        with self._lock:
            errors = self._reload_library(self.get_parameter('target_dir').value)
            if self.target is not None and self.target.name in self.library:
                self.target = self.library[self.target.name]
        response.success = not errors
        names = ', '.join(sorted(self.library)) or 'none'
        response.message = f'loaded targets: {names}' + ''.join(f'; {k}: {v}' for k, v in errors.items())
        return response

    # ----------------------------------------------------------------- frames
    def _on_info(self, msg: CameraInfo):
        self.camera_info = msg

    def _abstain(self, reason: str, header=None, bad_input=False) -> None:
        self.counts['bad_input' if bad_input else 'abstained'] += 1
        self.get_logger().warning(f'no grasp: {reason}', throttle_duration_sec=1.0)
        self.pub_status.publish(String(data=f'abstain: {reason}'))
        if header is not None:
            self.pub_markers.publish(MarkerArray(markers=[Marker(header=header, action=Marker.DELETEALL)]))

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
        info = self.camera_info
        if info is None:
            return self._abstain(f'no camera_info received on {INFO_TOPIC}', bad_input=True)
        try:
            rgb = ic.to_rgb(ic.image_to_numpy(color, expected=('rgb8', 'bgr8', 'mono8')), color.encoding)
            depth = ic.depth_to_metres(ic.image_to_numpy(depth_msg, expected=('16UC1', '32FC1')), depth_msg.encoding)
            if (info.width, info.height) != (rgb.shape[1], rgb.shape[0]):
                raise ValueError(f'camera_info is for {info.width}x{info.height} but the image is '
                                 f'{rgb.shape[1]}x{rgb.shape[0]}')
            K = np.asarray(info.k, dtype=np.float64).reshape(3, 3)
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
            self.get_logger().error(f'frame failed: {type(e).__name__}: {e}', throttle_duration_sec=1.0)
            return self._abstain(f'internal error: {type(e).__name__}: {e}', header)
        self.pub_conf.publish(Float32(data=float(result.confidence)))
        if self.get_parameter('publish_heatmap').value and result.match is not None:
            overlay = ic.heatmap_overlay(rgb, result.match.heatmaps, result.match.keypoints)
            self.pub_heatmap.publish(ic.numpy_to_image(overlay, 'rgb8', header))
        if not result.ok:
            self._abstain(f'{target.name}: {result.reason}', header)
            if result.points_3d is not None:
                self.pub_markers.publish(self._markers(header, result, None))
            return
        pose = result.pose
        msg = PoseStamped(header=header)
        msg.pose.position.x, msg.pose.position.y, msg.pose.position.z = (float(v) for v in pose.position)
        (msg.pose.orientation.x, msg.pose.orientation.y, msg.pose.orientation.z,
         msg.pose.orientation.w) = (float(v) for v in pose.quaternion)
        self.pub_pose.publish(msg)
        self.pub_markers.publish(self._markers(header, result, msg))
        self.counts['poses'] += 1
        self.pub_status.publish(String(data=(
            f'ok: {target.name} confidence {result.confidence:.2f} width {pose.width * 100:.1f} cm at '
            f'({pose.position[0]:.3f}, {pose.position[1]:.3f}, {pose.position[2]:.3f}) m')))

    def _markers(self, header, result, pose_msg) -> MarkerArray:
        """Keypoints (spheres), grasp axis (line) and a gripper outline in the grasp frame."""
        green, blue, orange = ColorRGBA(r=0.1, g=0.9, b=0.1, a=1.0), ColorRGBA(r=0.1, g=0.4, b=1.0, a=1.0), \
            ColorRGBA(r=1.0, g=0.5, b=0.0, a=1.0)
        out = [Marker(header=header, action=Marker.DELETEALL)]
        pts = result.points_3d
        kp = Marker(header=header, ns='keypoints', id=0, type=Marker.SPHERE_LIST, action=Marker.ADD)
        kp.scale.x = kp.scale.y = kp.scale.z = 0.01
        kp.color = green
        kp.pose.orientation.w = 1.0
        kp.points = [Point(x=float(p[0]), y=float(p[1]), z=float(p[2])) for p in pts if np.all(np.isfinite(p))]
        out.append(kp)
        if pose_msg is not None:
            g = result.pose
            half = g.width / 2.0
            axis = Marker(header=header, ns='grasp_axis', id=1, type=Marker.LINE_LIST, action=Marker.ADD)
            axis.scale.x = 0.004
            axis.color = blue
            axis.pose.orientation.w = 1.0
            half_axis = g.rotation[:, 1] * g.axis_length / 2
            ends = [g.position - half_axis, g.position + half_axis]
            axis.points = [Point(x=float(e[0]), y=float(e[1]), z=float(e[2])) for e in ends]
            grip = Marker(header=header, ns='gripper', id=2, type=Marker.LINE_LIST, action=Marker.ADD)
            grip.pose = pose_msg.pose
            grip.scale.x = 0.005
            grip.color = orange
            # gripper frame: fingers along +-y at the opening width, from z=-0.05 to the fingertips at z=0
            segs = [((0, -half, -0.05), (0, -half, 0.0)), ((0, half, -0.05), (0, half, 0.0)),
                    ((0, -half, -0.05), (0, half, -0.05)), ((0, 0, -0.05), (0, 0, -0.10))]
            grip.points = [Point(x=float(a), y=float(b), z=float(c)) for s in segs for (a, b, c) in s]
            out += [axis, grip]
        return MarkerArray(markers=out)


def main(args=None):
    run_node(GraspPlanner, args)


if __name__ == '__main__':
    main()
