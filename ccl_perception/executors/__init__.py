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
Grasp executors: a simulated Panda (pybullet) and MoveItPy (real or simulated arm).

``base`` and ``sim_executor`` import without rclpy; ``moveit_executor`` needs ROS 2 +
MoveIt 2 (moveit_py) and is imported only when that backend is selected.
"""
from ccl_perception.executors.base import GraspExecutor, GraspResult, STAGES

__all__ = ['STAGES', 'GraspExecutor', 'GraspResult']
