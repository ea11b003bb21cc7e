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
Topic and service names of every node (no ROS import: a launch file or a tool reads them).

Every node, ``bringup``, the launch file and the demo take names from these constants, never
a literal (test/test_structure.py checks the node files). Relative names follow the RealSense
driver (``camera/...``: remap them or use bringup's ``camera_ns``); ``~/x`` names are private,
resolved under the node's name (:func:`private` spells them out for a client).
"""

#: Camera (RealSense driver names, relative: remap or use bringup's ``camera_ns``).
CAMERA_PREFIX = 'camera'
COLOR_TOPIC = 'camera/color/image_raw'
DEPTH_TOPIC = 'camera/aligned_depth_to_color/image_raw'
INFO_TOPIC = 'camera/color/camera_info'
#: The aligned depth's own camera_info (the RealSense publishes it; rviz's DepthCloud reads it).
DEPTH_INFO_TOPIC = 'camera/aligned_depth_to_color/camera_info'
CAMERA_TOPICS = (COLOR_TOPIC, DEPTH_TOPIC, INFO_TOPIC, DEPTH_INFO_TOPIC)
#: Optical frame of the camera in the robot/world frame (PoseStamped, latched).
CAMERA_POSE_TOPIC = 'camera/pose'
#: Planner output, executor input (PoseStamped in the colour optical frame).
GRASP_POSE_TOPIC = 'grasp_pose'
DESCRIPTORS_TOPIC = 'descriptors'
DESCRIPTORS_VIS_TOPIC = 'descriptors/visualization'
#: rviz's "Publish Point" tool (geometry_msgs/PointStamped in rviz's fixed frame).
CLICKED_POINT_TOPIC = 'clicked_point'
# Private (``~/``) topics and services, resolved under the node name.
STATUS_TOPIC = '~/status'
HEATMAP_TOPIC = '~/heatmap'
MARKERS_TOPIC = '~/markers'
CONFIDENCE_TOPIC = '~/confidence'
RESULT_TOPIC = '~/result'
SCENE_TOPIC = '~/scene'
RELOAD_TARGETS_SERVICE = '~/reload_targets'
EXECUTE_SERVICE = '~/execute'
RESET_SERVICE = '~/reset'
SAVE_TARGET_SERVICE = '~/save_target'
CLEAR_POINTS_SERVICE = '~/clear_points'

__all__ = [name for name in dir() if name.isupper()] + ['private']


def private(node_name: str, name: str) -> str:
    """Absolute name of node ``node_name``'s private topic/service ``~/x`` (``/node/x``)."""
    if not name.startswith('~/'):
        raise ValueError(f'{name!r} is not a private (~/) name')
    return f'/{node_name.strip("/")}/{name[2:]}'
