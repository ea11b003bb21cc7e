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
Message <-> numpy helpers of every node: stamps, poses, points, CameraInfo, images.

Images decode and encode through :mod:`ccl_perception.image_conversion` (no cv_bridge);
this module adds the message-level rules the nodes share (which encodings a colour or
depth image may have, sizes that must agree with the camera_info). Poses are 4x4
homogeneous transforms in metres with quaternions ``(x, y, z, w)``.
"""

from ccl_perception import image_conversion as ic
from ccl_perception.executors.base import matrix_to_pose, pose_to_matrix
import numpy as np

COLOR_ENCODINGS = ('rgb8', 'bgr8', 'mono8')
DEPTH_ENCODINGS = ('16UC1', '32FC1')


# ----------------------------------------------------------------------- stamps
def stamp_ns(stamp) -> int:
    """builtin_interfaces/Time -> integer nanoseconds."""
    return int(stamp.sec) * 1_000_000_000 + int(stamp.nanosec)


# ------------------------------------------------------------------------ poses
def pose_msg(T=None, position=None, quaternion=None):
    """(4, 4) transform, or ``position`` (3,) + ``quaternion`` (4,) xyzw -> geometry_msgs/Pose."""
    from geometry_msgs.msg import Pose
    pos, quat = matrix_to_pose(T) if T is not None else (position, quaternion)
    msg = Pose()
    msg.position.x, msg.position.y, msg.position.z = (float(v) for v in pos)
    (msg.orientation.x, msg.orientation.y, msg.orientation.z,
     msg.orientation.w) = (float(v) for v in quat)
    return msg


def pose_stamped(T, header=None, frame_id: str = None, stamp=None):
    """(4, 4) transform or a Pose -> PoseStamped (``header``, or ``frame_id`` + ``stamp``)."""
    from geometry_msgs.msg import PoseStamped
    msg = PoseStamped(pose=T if hasattr(T, 'orientation') else pose_msg(T))
    if header is not None:
        msg.header = header
    if frame_id is not None:
        msg.header.frame_id = frame_id
    if stamp is not None:
        msg.header.stamp = stamp
    return msg


def pose_to_T(pose) -> np.ndarray:
    """geometry_msgs/Pose -> (4, 4); ValueError on NaN or a zero quaternion."""
    q = pose.orientation
    return pose_to_matrix([pose.position.x, pose.position.y, pose.position.z],
                          [q.x, q.y, q.z, q.w])


def point_msg(p):
    """(3,) metres -> geometry_msgs/Point."""
    from geometry_msgs.msg import Point
    return Point(x=float(p[0]), y=float(p[1]), z=float(p[2]))


def point_to_array(point) -> np.ndarray:
    """geometry_msgs/Point -> (3,) float64; ValueError if not finite."""
    p = np.array([point.x, point.y, point.z], dtype=np.float64)
    if not np.all(np.isfinite(p)):
        raise ValueError(f'point {p.tolist()} is not finite')
    return p


# ------------------------------------------------------------------- CameraInfo
def camera_info_msg(K, width: int, height: int, header=None):
    """Pinhole CameraInfo without distortion (``plumb_bob`` with zeros), P = [K | 0]."""
    from sensor_msgs.msg import CameraInfo
    K = np.asarray(K, dtype=np.float64).reshape(3, 3)
    msg = CameraInfo()
    if header is not None:
        msg.header = header
    msg.width, msg.height = int(width), int(height)
    msg.distortion_model = 'plumb_bob'
    msg.d = [0.0] * 5
    msg.k = [float(v) for v in K.reshape(9)]
    msg.r = [1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0]
    P = np.zeros((3, 4))
    P[:, :3] = K
    msg.p = [float(v) for v in P.reshape(12)]
    return msg


def camera_info_K(msg) -> np.ndarray:
    """Return the (3, 3) intrinsics ``k`` of a CameraInfo message."""
    return np.asarray(msg.k, dtype=np.float64).reshape(3, 3)


# ----------------------------------------------------------------------- images
def image_msg(arr, encoding: str, header=None):
    """Convert numpy -> sensor_msgs/Image (``image_conversion.numpy_to_image``)."""
    return ic.numpy_to_image(arr, encoding, header)


def image_array(msg, expected=None) -> np.ndarray:
    """sensor_msgs/Image -> numpy (``image_conversion.image_to_numpy``)."""
    return ic.image_to_numpy(msg, expected=expected)


def rgb_from_msg(msg) -> np.ndarray:
    """Colour image (rgb8, bgr8, mono8) -> (H, W, 3) uint8 RGB; ValueError otherwise."""
    return ic.to_rgb(ic.image_to_numpy(msg, expected=COLOR_ENCODINGS), msg.encoding)


def depth_from_msg(msg) -> np.ndarray:
    """Depth image (16UC1 mm, 32FC1 m) -> (H, W) float32 metres, NaN = missing."""
    return ic.depth_to_metres(ic.image_to_numpy(msg, expected=DEPTH_ENCODINGS), msg.encoding)


def depth_to_16uc1(depth_m) -> np.ndarray:
    """(H, W) float metres (NaN = none) -> uint16 millimetres with 0 = none (RealSense)."""
    d = np.nan_to_num(np.asarray(depth_m, dtype=np.float64), nan=0.0) * 1000.0
    return np.clip(np.round(d), 0, 65535).astype(np.uint16)


def rgbd_from_msgs(color, depth, info):
    """
    Colour + aligned depth + CameraInfo -> ``(rgb (H, W, 3) uint8, depth (H, W) m, K)``.

    Raises:
        ValueError: wrong encoding / step / data size, or sizes that differ.
    """
    rgb = rgb_from_msg(color)
    d = depth_from_msg(depth)
    if d.shape != rgb.shape[:2]:
        raise ValueError(f'depth {d.shape[1]}x{d.shape[0]} does not match the colour image '
                         f'{rgb.shape[1]}x{rgb.shape[0]}')
    if (info.width, info.height) != (rgb.shape[1], rgb.shape[0]):
        raise ValueError(f'camera_info is for {info.width}x{info.height} but the image is '
                         f'{rgb.shape[1]}x{rgb.shape[0]}')
    return rgb, d, camera_info_K(info)


# ---------------------------------------------------------------------- markers
def grasp_markers(header, points_3d, grasp=None, pose=None):
    """
    MarkerArray: DELETEALL, keypoint spheres and, with a grasp, its axis and gripper.

    Args:
        header: std_msgs/Header of the frame (camera optical frame).
        points_3d: (N, 3) keypoints in metres (NaN rows are left out) or None.
        grasp: ``geometry.GraspPose`` (rotation (3, 3), position (3,), width, axis_length).
        pose: the geometry_msgs/Pose of ``grasp`` (the gripper outline is drawn in it).
    """
    from std_msgs.msg import ColorRGBA
    from visualization_msgs.msg import Marker, MarkerArray
    out = [Marker(header=header, action=Marker.DELETEALL)]
    if points_3d is not None:
        kp = Marker(header=header, ns='keypoints', id=0, type=Marker.SPHERE_LIST,
                    action=Marker.ADD)
        kp.scale.x = kp.scale.y = kp.scale.z = 0.01
        kp.color = ColorRGBA(r=0.1, g=0.9, b=0.1, a=1.0)
        kp.pose.orientation.w = 1.0
        kp.points = [point_msg(p) for p in points_3d if np.all(np.isfinite(p))]
        out.append(kp)
    if grasp is not None:
        axis = Marker(header=header, ns='grasp_axis', id=1, type=Marker.LINE_LIST,
                      action=Marker.ADD)
        axis.scale.x = 0.004
        axis.color = ColorRGBA(r=0.1, g=0.4, b=1.0, a=1.0)
        axis.pose.orientation.w = 1.0
        half_axis = grasp.rotation[:, 1] * grasp.axis_length / 2
        axis.points = [
            point_msg(
                grasp.position -
                half_axis),
            point_msg(
                grasp.position +
                half_axis)]
        grip = Marker(header=header, ns='gripper', id=2, type=Marker.LINE_LIST, action=Marker.ADD)
        grip.pose = pose
        grip.scale.x = 0.005
        grip.color = ColorRGBA(r=1.0, g=0.5, b=0.0, a=1.0)
        # gripper frame: fingers along +-y at the opening width, from z=-0.05 to the tips at z=0
        h = grasp.width / 2.0
        segs = [((0, -h, -0.05), (0, -h, 0.0)), ((0, h, -0.05), (0, h, 0.0)),
                ((0, -h, -0.05), (0, h, -0.05)), ((0, 0, -0.05), (0, 0, -0.10))]
        grip.points = [point_msg(p) for s in segs for p in s]
        out += [axis, grip]
    return MarkerArray(markers=out)
