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
Grasping pipeline: descriptor node, grasp planner, grasp executor, optional sim world and rviz.

    ros2 launch ccl_perception grasp.launch.py checkpoint:=model.pt target:=mug \
        target_dir:=targets sim:=true executor_backend:=sim rviz:=true

The node table (names, executables, parameters = config/<node>.yaml merged with the
launch arguments, remappings) comes from ``ccl_perception.bringup.node_specs``, the
same function the one-process ``bringup`` uses; see docs/ros_interface.md.
"""

import os

from ccl_perception.bringup import (config_dir, LAUNCH_ARGUMENTS, merged_parameters, node_specs,
                                    PACKAGE)
from launch import LaunchDescription
from launch.actions import DeclareLaunchArgument, OpaqueFunction
from launch.substitutions import LaunchConfiguration
from launch_ros.actions import Node


def _nodes(context, *args, **kwargs):
    values = {name: LaunchConfiguration(name).perform(context) for name in LAUNCH_ARGUMENTS}
    specs = node_specs(values)
    guests = {}
    for s in specs:
        if s.host is not None:
            guests.setdefault(s.host, []).append(s)
    actions = []
    for s in specs:
        if s.host is not None:
            continue  # runs inside its host's process
        params = [merged_parameters(s)] + [merged_parameters(g) for g in guests.get(s.name, [])]
        # A process hosting several nodes must not rename them all (__node remap): keep code names.
        name = None if s.name in guests else s.name
        actions.append(Node(package=PACKAGE, executable=s.executable, name=name, output='screen',
                            parameters=params, remappings=s.remappings))
    if values['rviz'].strip().lower() in ('1', 'true', 'yes', 'on'):
        actions.append(Node(package='rviz2', executable='rviz2', name='rviz2', output='screen',
                            arguments=['-d', os.path.join(config_dir(), 'ccl.rviz')]))
    return actions


def generate_launch_description():
    declared = [DeclareLaunchArgument(name, default_value=default, description=text)
                for name, (default, text) in LAUNCH_ARGUMENTS.items()]
    return LaunchDescription(declared + [OpaqueFunction(function=_nodes)])
