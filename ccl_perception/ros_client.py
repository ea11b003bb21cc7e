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
A short-lived ROS 2 client for command-line tools (the ``ccl`` console script).

:class:`RosClient` owns one rclpy context, one node and one single-threaded executor, and
turns every wait into a bounded one: a service that does not appear or does not answer, a
topic that stays silent, a parameter set that is refused, each ends in a :class:`ClientError`
with one line that says what was waited for and for how long. It stands in for the
``ros2`` command line where only the Python packages are installed (this venv): parameters
over ``rcl_interfaces`` services, ``std_srvs/Trigger`` calls, first messages of a topic.
"""

import time

#: Seconds a tool waits for a service, an answer or a first message unless told otherwise.
DEFAULT_TIMEOUT_S = 10.0
#: How a missing peer is explained (the usual causes, in order).
PEER_HINT = 'is it running, with the same ROS_DOMAIN_ID and ROS_AUTOMATIC_DISCOVERY_RANGE?'


class ClientError(RuntimeError):
    """A peer did not answer in time, or refused: the one-line reason."""


def camera_topic(topic: str, camera_ns: str) -> str:
    """
    Absolute name of a camera topic under ``camera_ns``.

    ``nodes.COLOR_TOPIC`` etc. start with ``nodes.CAMERA_PREFIX`` (``camera``); realsense-ros
    4.x publishes under ``camera/camera``: ``camera_topic(COLOR_TOPIC, 'camera/camera')`` is
    ``/camera/camera/color/image_raw``.
    """
    from ccl_perception.nodes import CAMERA_PREFIX
    ns = camera_ns.strip('/') or CAMERA_PREFIX
    return '/' + ns + topic[len(CAMERA_PREFIX):]


class RosClient:
    """
    One node of a command-line tool, spun only while the tool waits.

    Args:
        name: node name (a per-process suffix keeps two tools apart).
        timeout: default seconds of every wait.

    Use as a context manager; :meth:`close` destroys the node and shuts the context down.
    """

    def __init__(self, name: str = 'ccl_cli', timeout: float = DEFAULT_TIMEOUT_S):
        import os

        import rclpy
        from rclpy.executors import SingleThreadedExecutor

        from rclpy.signals import SignalHandlerOptions

        self.timeout = float(timeout)
        self.context = rclpy.context.Context()
        # Ctrl-C is the tool's (KeyboardInterrupt: `ccl record` closes its bag), not rclpy's
        rclpy.init(args=[], context=self.context, signal_handler_options=SignalHandlerOptions.NO)
        self.node = rclpy.create_node(f'{name}_{os.getpid()}', context=self.context)
        self.executor = SingleThreadedExecutor(context=self.context)
        self.executor.add_node(self.node)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def close(self) -> None:
        self.executor.shutdown(timeout_sec=1.0)
        self.node.destroy_node()
        if self.context.ok():
            self.context.try_shutdown()

    # ------------------------------------------------------------------ waiting
    def spin_for(self, seconds: float) -> None:
        """Process callbacks for ``seconds``."""
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            self.executor.spin_once(timeout_sec=min(0.05, max(0.0, end - time.monotonic())))

    def wait_for(self, ready, what: str, timeout: float = None):
        """
        Spin until ``ready()`` returns something truthy; return it.

        Raises:
            ClientError: ``no <what> within <timeout> s``.
        """
        timeout = self.timeout if timeout is None else timeout
        end = time.monotonic() + timeout
        while True:
            value = ready()
            if value:
                return value
            if time.monotonic() >= end:
                raise ClientError(f'no {what} within {timeout:g} s')
            self.executor.spin_once(timeout_sec=0.05)

    def matching_qos(self, topic: str):
        """
        Return the QoS to subscribe to ``topic`` with, adapted to its publishers (as rosbag2).

        Reliable (keep last 10) when every discovered publisher offers reliable delivery: a
        best-effort subscriber loses large frames that DDS has to fragment (a 640x480 image
        under load); best effort otherwise (a reliable subscriber would not match a
        best-effort publisher) or when no publisher is known yet.
        """
        from rclpy.qos import QoSProfile, ReliabilityPolicy

        from ccl_perception.nodes import SENSOR_QOS
        infos = self.node.get_publishers_info_by_topic(topic)
        if infos and all(i.qos_profile.reliability == ReliabilityPolicy.RELIABLE for i in infos):
            return QoSProfile(depth=10, reliability=ReliabilityPolicy.RELIABLE)
        return SENSOR_QOS

    def wait_for_publishers(self, topics, timeout: float = None) -> bool:
        """Spin until every topic has a discovered publisher (False after the timeout)."""
        try:
            self.wait_for(lambda: all(self.node.count_publishers(t) for t in topics),
                          'publisher', timeout)
            return True
        except ClientError:
            return False

    def collect(self, msg_type, topic: str, qos, raw: bool = False) -> list:
        """Subscribe to ``topic``; return the list its messages are appended to."""
        got = []
        self.node.create_subscription(msg_type, topic, got.append, qos, raw=raw)
        return got

    # ------------------------------------------------------------------ services
    def call(self, srv_type, service: str, request=None, timeout: float = None):
        """
        Call ``service`` and return its response.

        Raises:
            ClientError: the service did not appear or did not answer within the timeout.
        """
        timeout = self.timeout if timeout is None else timeout
        client = self.node.create_client(srv_type, service)
        try:
            end = time.monotonic() + timeout
            while not client.service_is_ready():
                if time.monotonic() >= end:
                    raise ClientError(f'service {service} is not available after {timeout:g} s: '
                                      f'{PEER_HINT}')
                self.executor.spin_once(timeout_sec=0.05)
            future = client.call_async(request if request is not None else srv_type.Request())
            self.wait_for(future.done, f'answer from {service}',
                          max(0.0, end - time.monotonic()) + timeout)
            return future.result()
        finally:
            self.node.destroy_client(client)

    def set_parameters(self, node: str, values: dict) -> None:
        """
        Set parameters of ``node`` (``/name``) as ``ros2 param set`` does.

        Raises:
            ClientError: the node is not there, or it refused (its reason, verbatim).
        """
        from rcl_interfaces.srv import SetParameters
        from rclpy.parameter import Parameter
        request = SetParameters.Request(parameters=[
            Parameter(k, value=v).to_parameter_msg() for k, v in values.items()])
        response = self.call(SetParameters, f'{node}/set_parameters', request)
        for name, result in zip(values, response.results):
            if not result.successful:
                raise ClientError(f'{node} refused {name} = {values[name]!r}: {result.reason}')

    def get_parameters(self, node: str, names) -> dict:
        """``{name: value}`` of ``node``'s parameters (None where it has no such parameter)."""
        from rcl_interfaces.srv import GetParameters
        from rclpy.parameter import parameter_value_to_python
        names = list(names)
        response = self.call(GetParameters, f'{node}/get_parameters',
                             GetParameters.Request(names=names))
        return {n: parameter_value_to_python(v) for n, v in zip(names, response.values)}

    def trigger(self, service: str, timeout: float = None):
        """Call a ``std_srvs/Trigger`` service; return ``(success, message)``."""
        from std_srvs.srv import Trigger
        response = self.call(Trigger, service, timeout=timeout)
        return bool(response.success), str(response.message)
