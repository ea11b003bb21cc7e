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
ROS 2 nodes: thin adapters between messages and the ROS-free core, one node per file.

What the nodes share is split by concern, each a small module:

* :mod:`.names`   -- topic and service names (no ROS import: ``from ccl_perception.nodes
  import COLOR_TOPIC`` works without rclpy);
* :mod:`.qos`     -- QoS profiles;
* :mod:`.params`  -- parameter declaration from a defaults table, validated run-time changes,
  the model parameters and loading;
* :mod:`.inputs`  -- the newest-frame mailbox, colour/depth time synchronisation
  (``message_filters`` where installed, else :mod:`ccl_perception.sync`), the silence alarm;
* :mod:`.runner`  -- :class:`NodeRunner` / :func:`run_nodes`, the one init/spin/shutdown body of
  every process, and SIGINT that always stops it;
* :mod:`.messages` -- message <-> numpy conversions.

The names are imported here; everything else is importable from this package too, loaded on
first use (PEP 562), so importing a name never imports rclpy.

Every node class takes ``**kwargs`` and forwards them to ``rclpy.node.Node`` (``cli_args``,
``namespace``, ``parameter_overrides``, ``context``), which is how ``bringup`` starts
several of them in one process.
"""

import importlib

from ccl_perception.nodes import names as _names
from ccl_perception.nodes.names import *  # noqa: F401, F403 - the names are this package's API

#: What the package re-exports from its ROS modules, loaded on first access.
_LAZY = {
    'qos': ('SENSOR_QOS', 'OUTPUT_QOS', 'STATUS_QOS', 'LATCHED_QOS'),
    'params': ('MODEL_PARAMS', 'declare_parameters', 'param_values', 'refuse_bad_changes',
               'load_extractor'),
    'inputs': ('LatestFrame', 'subscribe_rgbd', 'watch_input'),
    'runner': ('NodeRunner', 'run_nodes', 'node_main', 'shutdown_tolerant', 'stop_on_sigint'),
}
_HOME = {name: module for module, names in _LAZY.items() for name in names}

__all__ = sorted(_names.__all__ + list(_HOME))


def __getattr__(name: str):
    """Load ``name`` from the module that defines it (rclpy is imported only then)."""
    if name in _HOME:
        return getattr(importlib.import_module(f'{__name__}.{_HOME[name]}'), name)
    raise AttributeError(f'module {__name__!r} has no attribute {name!r}')


def __dir__():
    return sorted(set(globals()) | set(_HOME))
