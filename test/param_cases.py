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
Hand-written good / boundary / bad values of every runtime setting (shared by the tests).

Each row is ``(name, value, allowed)``. The values are written here by hand from the
documented ranges (docs/ros_interface.md), not derived from the code's limit tables, so a
changed limit fails a test instead of silently moving the test with it.
"""

NAN, INF = float('nan'), float('inf')

#: ccl_perception.grasp_pipeline knobs (also grasp_planner parameters).
PIPELINE = [
    ('tau', 0.03, True), ('tau', 1e-6, True), ('tau', 1.0, True), ('tau', 0.0, False),
    ('tau', -1.0, False), ('tau', NAN, False), ('tau', INF, False), ('tau', 1.5, False),
    ('confidence_scale_px', 16.0, True), ('confidence_scale_px', 1000.0, True),
    ('confidence_scale_px', 0.0, False), ('confidence_scale_px', -3.0, False),
    ('confidence_scale_px', NAN, False),
    ('min_confidence', 0.0, True), ('min_confidence', 1.0, True), ('min_confidence', 5.0, False),
    ('min_confidence', -0.1, False), ('min_confidence', NAN, False),
    ('min_similarity', -1.0, True), ('min_similarity', 1.0, True), ('min_similarity', 0.5, True),
    ('min_similarity', -2.0, False), ('min_similarity', 1.01, False),
    ('min_similarity', NAN, False),
    ('depth_window', 1, True), ('depth_window', 51, True), ('depth_window', 5, True),
    ('depth_window', 4, False), ('depth_window', -3, False), ('depth_window', 53, False),
    ('depth_window', 100000, False),
    ('axis_length_tolerance', 0.3, True), ('axis_length_tolerance', 1e6, True),
    ('axis_length_tolerance', 0.0, False), ('axis_length_tolerance', INF, False),
    ('gripper_margin', 0.0, True), ('gripper_margin', 0.1, True), ('gripper_margin', -1.0, False),
    ('gripper_margin', 0.11, False),
    ('max_width', 0.08, True), ('max_width', 1.0, True), ('max_width', 0.0, False),
    ('max_width', -1.0, False), ('max_width', 1.1, False),
    ('min_clearance', 0.0, True), ('min_clearance', 0.1, True), ('min_clearance', -0.01, False),
    ('min_clearance', 0.2, False), ('min_clearance', NAN, False),
    ('per_target_gates', True, True), ('per_target_gates', False, True),
    ('approach', 'normal', True), ('approach', 'camera', True), ('approach', 'sideways', False),
    ('grasp_refinement', 'depth', True), ('grasp_refinement', 'none', True),
    ('grasp_refinement', 'mesh', False),
    ('ransac_threshold', 0.01, True), ('ransac_threshold', 10.0, True),
    ('ransac_threshold', 0.0, False), ('ransac_threshold', 10.5, False),
    ('min_inlier_fraction', 1.0, True), ('min_inlier_fraction', 0.01, True),
    ('min_inlier_fraction', 0.0, False), ('min_inlier_fraction', 1.2, False),
    ('min_depth', 0.0, True), ('min_depth', 2.9, True), ('min_depth', -0.1, False),
    ('min_depth', 3.0, False),  # not below the default max_depth 3.0
    ('max_depth', 0.1, True), ('max_depth', 20.0, True),
    ('max_depth', 0.05, False),  # = default min_depth
    ('max_depth', 25.0, False), ('max_depth', NAN, False),
]

#: grasp_planner parameters that are not pipeline knobs (start-up only).
PLANNER_STARTUP = [
    ('max_rate_hz', 15.0, True), ('max_rate_hz', 1000.0, True), ('max_rate_hz', 0.0, False),
    ('max_rate_hz', -1.0, False), ('max_rate_hz', 1001.0, False),
    ('sync_slop', 0.02, True), ('sync_slop', 1.0, True), ('sync_slop', 0.0, False),
    ('sync_slop', 2.0, False),
    ('sync_queue_size', 1, True), ('sync_queue_size', 100, True), ('sync_queue_size', 0, False),
    ('sync_queue_size', 101, False),
    ('device', 'cpu', True), ('device', 'cuda:1', True), ('device', 'tpu', False),
    ('device', 'cuda:', False),
    ('backend', 'torch', True), ('backend', 'onnx', True), ('backend', 'tensorrt', False),
    ('input_timeout_s', 5.0, True), ('input_timeout_s', 0.0, False),
    ('input_timeout_s', -1.0, False),
]

#: grasp_executor parameters a running executor takes.
EXECUTOR_RUN_TIME = [
    ('auto_execute', False, True), ('auto_execute', True, True),
    ('pre_grasp_distance', 0.1, True), ('pre_grasp_distance', 0.5, True),
    ('pre_grasp_distance', 0.0, False), ('pre_grasp_distance', -0.1, False),
    ('pre_grasp_distance', NAN, False),
    ('grasp_depth', 0.0, True), ('grasp_depth', 0.1, True), ('grasp_depth', -0.01, False),
    ('grasp_depth', 0.2, False),
    ('lift_height', 0.15, True), ('lift_height', 0.5, True), ('lift_height', 0.0, False),
    ('lift_height', INF, False),
]
#: grasp_executor parameters checked at start-up (rejected at run time).
EXECUTOR_STARTUP = [
    ('backend', 'ros1', False),
    ('camera_frame', '', False), ('camera_frame', 'wrist_optical', True),
    ('world_from_camera', [0.0], True),
    ('world_from_camera', [0.1, 0.0, 0.5, 0.0, 0.0, 0.0, 1.0], True),
    ('world_from_camera', [0.1, 0.0, 0.5], False),
    ('world_from_camera', [0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0], False),
    ('world_from_camera', [NAN, 0.0, 0.5, 0.0, 0.0, 0.0, 1.0], False),
    ('gripper_open_position', 0.04, True), ('gripper_open_position', 0.0, False),
    ('gripper_max_effort', -1.0, False),
    ('empty_width', -0.001, False),
    ('action_timeout_s', 0.0, False),
    ('pre_grasp_distance', -1.0, False),
]

#: sim_world parameters the next ~/reset takes ('duck' and 'box_000' are the test world's objects).
SIM_WORLD_RUN_TIME = [
    ('seed', 0, True), ('seed', 2**31 - 1, True), ('seed', -1, False), ('seed', 2**31, False),
    ('target', 'duck', True), ('target', '', True), ('target', 'teapot', False),
    ('target_present', False, True), ('target_present', True, True),
    ('surface', '', True), ('surface', 'oak_light', True),
]
SIM_WORLD_STARTUP = [
    ('publish_rate', 2.0, True), ('publish_rate', 60.0, True), ('publish_rate', 0.0, False),
    ('publish_rate', -1.0, False), ('publish_rate', 61.0, False),
    ('width', 32, True), ('width', 31, False), ('width', 0, True),
    ('benchmark', 'v3', False), ('min_elevation_deg', 95.0, False),
    ('height', 5000, False),
    ('n_objects', 1, False),
    ('background_seed', -3, False),
    ('world_frame', '', False),
    ('seed', -5, False),
    ('target', 'teapot', False),
    ('protocol', 'visible', True), ('protocol', 'paper', False),
]

#: descriptor_node: what a running node takes, and what only a start takes.
DESCRIPTOR_RUN_TIME = [('publish_visualization', False, True),
                       ('publish_visualization', True, True)]
DESCRIPTOR_STARTUP = [
    ('max_rate_hz', 30.0, True), ('max_rate_hz', 1000.0, True), ('max_rate_hz', 0.0, False),
    ('max_rate_hz', -1.0, False), ('max_rate_hz', 1001.0, False), ('max_rate_hz', NAN, False),
    ('input_timeout_s', 2.0, True), ('input_timeout_s', 0.0, False),
    ('input_timeout_s', -5.0, False), ('input_timeout_s', 4000.0, False),
    ('downscale', 2, True), ('downscale', 0, False), ('downscale', 9, False),
    ('device', 'tpu', False), ('backend', 'tensorrt', False),
]

#: target_maker: name and target_dir are read at each save; the rest only at start.
TARGET_MAKER_RUN_TIME = [
    ('name', 'mug', True), ('name', '', True), ('name', 'mug.v2', True),
    ('name', '../mug', False), ('name', 'a/b', False), ('name', '.hidden', False),
    ('target_dir', '/tmp/targets', True),
]
TARGET_MAKER_STARTUP = [
    ('sync_slop', 0.05, True), ('sync_slop', 1.0, True), ('sync_slop', 0.0, False),
    ('sync_slop', 2.0, False), ('sync_slop', INF, False),
    ('sync_queue_size', 1, True), ('sync_queue_size', 0, False), ('sync_queue_size', 101, False),
    ('downscale', 0, False), ('downscale', 9, False), ('device', 'gpu', False),
    ('backend', 'trt', False), ('name', '../x', False),
]
