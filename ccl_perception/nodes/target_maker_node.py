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
Target maker node: make a grasp target from the live camera with rviz's "Publish Point".

Click two or more points on the object in rviz (tool "Publish Point", e.g. on the
DepthCloud display of ``config/ccl.rviz``): the first two are the grasp axis, more points
make the planner's 3D check robust. Each ``clicked_point`` (geometry_msgs/PointStamped) is
kept in its frame: the colour optical frame (rviz fixed frame
``camera_color_optical_frame``) or the frame of ``camera/pose`` (e.g. ``world``, with a
camera pose published). ``~/save_target`` (std_srvs/Trigger) projects them into the
current frame (latest colour + depth + camera_info), runs the descriptor model and saves
``<target_dir>/<name>.npz`` (``ccl_perception.targets``; a target saved before under that name
is kept as ``<name>.npz.bak``, never overwritten silently); the planner then takes it with
``ros2 param set /grasp_planner target <name>``. With ``add_view`` the save adds the view to
the existing ``<name>.npz`` instead (a target of 2-4 views: e.g. top-down, then two oblique
ones). ``~/clear_points`` forgets the points.
``~/status`` reports every click, rejection and save.

Parameters: ``checkpoint``/``device``/``backend``/``downscale`` (the planner's model: targets
carry the model identity), ``target_dir``, ``name`` (of the next target), ``add_view``,
``sync_slop``, ``sync_queue_size``; checked against ``node_limits.TARGET_MAKER_LIMITS`` at
start-up and on every change (``target_dir``, ``name`` and ``add_view`` change at run time).
Points in another frame are rejected (no tf2 here) and counted.
"""
import os
import threading

from ccl_perception import geometry
from ccl_perception.grasp_pipeline import DEFAULTS as PIPELINE_DEFAULTS
from ccl_perception.node_limits import check_target_maker, TARGET_MAKER_RUN_TIME
from ccl_perception.nodes import (CAMERA_POSE_TOPIC, CLEAR_POINTS_SERVICE, CLICKED_POINT_TOPIC,
                                  declare_parameters, INFO_TOPIC, LATCHED_QOS, LatestFrame,
                                  load_extractor, MODEL_PARAMS, node_main, param_values,
                                  refuse_bad_changes, SAVE_TARGET_SERVICE, SENSOR_QOS,
                                  STATUS_QOS, STATUS_TOPIC, subscribe_rgbd)
from ccl_perception.nodes.messages import point_to_array, pose_to_T, rgbd_from_msgs
from ccl_perception.targets import add_view, load_target, make_target, TargetError, TargetLibrary
from geometry_msgs.msg import PointStamped, PoseStamped
import numpy as np
from rclpy.node import Node
from sensor_msgs.msg import CameraInfo
from std_msgs.msg import String
from std_srvs.srv import Trigger

#: Every parameter with its default (config/target_maker.yaml is checked against it).
PARAMS = {
    **MODEL_PARAMS,
    'target_dir': '',           # where targets are saved (the planner's target_dir)
    'name': '',                 # name of the next saved target (file <target_dir>/<name>.npz)
    'add_view': False,          # add the next save as another view of the existing <name>.npz
    'sync_slop': 0.02,          # colour/depth stamp tolerance, seconds
    'sync_queue_size': 5,       # messages kept per stream for synchronisation
}


class TargetMaker(Node):
    """Clicked points + the current RGB-D frame -> a saved target; see the module docstring."""

    def __init__(self, **kwargs):
        super().__init__('target_maker', **kwargs)
        declare_parameters(self, PARAMS)
        p = check_target_maker(param_values(self, PARAMS))  # a bad value stops the start
        refuse_bad_changes(self, PARAMS, TARGET_MAKER_RUN_TIME, check_target_maker)
        self.extractor, self.load_error = load_extractor(self)
        self._lock = threading.Lock()
        self.points = []            # [(frame_id, (3,) metres)]
        self.counts = {'points': 0, 'rejected_points': 0, 'saved': 0, 'failed_saves': 0}
        self.frame = LatestFrame()  # newest (colour, depth) pair; peeked, never taken
        self.camera_info = None
        self.camera_pose = None     # PoseStamped of the optical frame
        self._subs = subscribe_rgbd(self, lambda c, d: self.frame.put((c, d)),
                                    float(p['sync_slop']), int(p['sync_queue_size']))
        self.create_subscription(CameraInfo, INFO_TOPIC, self._on_info, SENSOR_QOS)
        self.create_subscription(PoseStamped, CAMERA_POSE_TOPIC, self._on_camera_pose,
                                 LATCHED_QOS)
        self.create_subscription(PointStamped, CLICKED_POINT_TOPIC, self._on_point, 10)
        self.pub_status = self.create_publisher(String, STATUS_TOPIC, STATUS_QOS)
        self.create_service(Trigger, SAVE_TARGET_SERVICE, self._on_save)
        self.create_service(Trigger, CLEAR_POINTS_SERVICE, self._on_clear)
        self.get_logger().info(f'target maker ready: target_dir={p["target_dir"]!r}, '
                               f'model {"loaded" if self.extractor else "NOT loaded"}')

    def _status(self, text: str, warn: bool = False) -> None:
        if warn:  # one severity per call site (rclpy)
            self.get_logger().warning(text)
        else:
            self.get_logger().info(text)
        self.pub_status.publish(String(data=text))

    def _on_info(self, msg: CameraInfo) -> None:
        self.camera_info = msg

    def _on_camera_pose(self, msg: PoseStamped) -> None:
        self.camera_pose = msg

    def _camera_frame(self):
        item = self.frame.peek()
        return item[0].header.frame_id if item is not None else None

    def _on_point(self, msg: PointStamped) -> None:
        frame = msg.header.frame_id
        known = {self._camera_frame(), getattr(getattr(self.camera_pose, 'header', None),
                                               'frame_id', None)} - {None, ''}
        try:
            p = point_to_array(msg.point)
            if frame not in known:
                raise ValueError(f'frame {frame!r} is neither the camera frame nor the camera '
                                 f'pose frame (known: {sorted(known) or "none yet"}); set '
                                 "rviz's fixed frame to one of them")
        except ValueError as e:
            self.counts['rejected_points'] += 1
            return self._status(f'point rejected: {e}', warn=True)
        with self._lock:
            self.points.append((frame, p))
            n = len(self.points)
        self.counts['points'] += 1
        role = 'grasp axis' if n <= 2 else '3D check'
        self._status(f'point {n} ({role}) at {np.round(p, 3).tolist()} m in {frame!r}')

    def _on_clear(self, request, response):
        with self._lock:
            n, self.points = len(self.points), []
        response.success, response.message = True, f'cleared {n} point(s)'
        return response

    def pixels(self, camera_frame: str, K) -> np.ndarray:
        """Return the clicked points projected into the current colour frame, ``(N, 2)`` pixels."""
        T_cam_world = None
        if self.camera_pose is not None:
            T_cam_world = np.linalg.inv(pose_to_T(self.camera_pose.pose))
        cam = []
        for frame, p in self.points:
            if frame == camera_frame:
                cam.append(p)
            elif T_cam_world is not None and frame == self.camera_pose.header.frame_id:
                cam.append(T_cam_world[:3, :3] @ p + T_cam_world[:3, 3])
            else:
                raise ValueError(
                    f'point in frame {frame!r} cannot be brought into {camera_frame!r}')
        cam = np.asarray(cam)
        if np.any(cam[:, 2] <= 0):
            raise ValueError('a clicked point lies behind the camera')
        return geometry.project(cam, K)

    def _on_save(self, request, response):
        try:
            response.message = self.save()
            response.success = True
            self.counts['saved'] += 1
        except (ValueError, OSError) as e:
            self.counts['failed_saves'] += 1
            response.success, response.message = False, f'not saved: {e}'
        self._status(response.message, warn=not response.success)
        return response

    def save(self) -> str:
        """Make and write the target; returns the report line. ValueError says why not."""
        p = param_values(self, PARAMS)
        if self.extractor is None:
            raise ValueError(self.load_error)
        library = TargetLibrary(p['target_dir'], str(self.extractor.identity))
        path = library.path_for(p['name'])  # TargetError (a ValueError) for a bad name/dir
        item, info = self.frame.peek(), self.camera_info
        if item is None or info is None:
            raise ValueError('no camera frame yet (colour, depth and camera_info are needed)')
        rgb, depth, K = rgbd_from_msgs(item[0], item[1], info)
        with self._lock:
            if len(self.points) < 2:
                raise ValueError(f'{len(self.points)} point(s) clicked; a target needs two '
                                 '(the grasp axis) or more')
            px = self.pixels(item[0].header.frame_id, K)
        H, W = depth.shape
        if np.any(px < 0) or np.any(px[:, 0] > W - 1) or np.any(px[:, 1] > H - 1):
            raise ValueError(f'clicked points project outside the {W}x{H} image: '
                             f'{np.round(px, 1).tolist()}')
        target = make_target(self.extractor, rgb, px, p['name'], depth=depth, K=K,
                             depth_window=int(PIPELINE_DEFAULTS['depth_window']))
        kept = f' (the previous one is kept as {path}.bak)' if os.path.isfile(path) else ''
        try:
            if p['add_view']:  # TargetError: no such target, another model, too many views
                target = add_view(load_target(path, library.identity), target)
            library.save(target)
        except TargetError as e:
            raise ValueError(str(e)) from e
        with self._lock:
            self.points = []
        view = target.views[-1]
        gate = 'none' if view.gate is None else '/'.join(f'{g:.3f}' for g in view.gate)
        return (f'saved target {target.name!r} (view {len(target.views)}: {len(px)} points, '
                f'axis length {view.axis_length * 100:.1f} cm, similarity gates {gate}, downscale '
                f'{target.downscale}) to {path}{kept}; set it with: ccl set-target {target.name}')


def main(args=None):
    return node_main(TargetMaker, args, 'target_maker_node')


if __name__ == '__main__':
    raise SystemExit(main())
