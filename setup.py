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

from glob import glob
import os

from setuptools import find_packages, setup

package_name = 'ccl_perception'

setup(
    name=package_name,
    version='0.1.0',
    packages=find_packages(exclude=['test', 'training']),
    package_data={'ccl_perception.sim': ['benchmark_v2.yaml'],
                  'ccl_perception': ['models/ccl_default.pt', 'models/ccl_default.json']},
    data_files=[
        ('share/ament_index/resource_index/packages', ['resource/' + package_name]),
        ('share/' + package_name, ['package.xml', 'LICENSE']),
        (os.path.join('share', package_name, 'launch'), glob('launch/*.launch.py')),
        (os.path.join('share', package_name, 'config'), glob('config/*')),
        (os.path.join('share', package_name, 'training', 'configs'),
         glob('training/configs/*.yaml')),
    ],
    install_requires=['setuptools'],
    zip_safe=True,
    maintainer='ccl_perception maintainers',
    maintainer_email='ccl-perception@example.com',
    description='Dense view-invariant descriptors (Cycle-Correspondence Loss) for robot grasping.',
    license='Apache-2.0',
    extras_require={'test': ['pytest']},
    entry_points={
        'console_scripts': [
            'descriptor_node = ccl_perception.nodes.descriptor_node:main',
            'grasp_planner_node = ccl_perception.nodes.grasp_planner_node:main',
            'grasp_executor_node = ccl_perception.nodes.grasp_executor_node:main',
            'sim_world_node = ccl_perception.nodes.sim_world_node:main',
            'target_maker_node = ccl_perception.nodes.target_maker_node:main',
            'bringup = ccl_perception.bringup:main',
            'make_target = ccl_perception.targets:main',
            'ccl = ccl_perception.ccl_cli:main',
        ],
    },
)
