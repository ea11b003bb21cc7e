"""Test-wide settings: every ROS test stays on localhost in a DDS domain of its own."""
import os
import random

# Set before any test module imports rclpy: DDS reads these when the context starts.
os.environ['ROS_AUTOMATIC_DISCOVERY_RANGE'] = 'LOCALHOST'
if 'PYTEST_XDIST_WORKER' in os.environ or 'ROS_DOMAIN_ID' not in os.environ:
    os.environ['ROS_DOMAIN_ID'] = str(random.SystemRandom().randint(1, 200))
os.environ.setdefault('OMP_NUM_THREADS', '2')
