"""Grasp executors: a simulated Panda (pybullet) and MoveItPy (real or simulated arm).

``base`` and ``sim_executor`` import without rclpy; ``moveit_executor`` needs ROS 2 +
MoveIt 2 (moveit_py) and is imported only when that backend is selected.
"""
from ccl_perception.executors.base import STAGES, GraspExecutor, GraspResult

__all__ = ['STAGES', 'GraspExecutor', 'GraspResult']
