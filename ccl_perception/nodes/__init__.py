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
ROS 2 nodes: thin adapters between messages and the ROS-free core.

Shared here: the topic and service names (every node, ``bringup`` and the demo use these
constants, never a literal), QoS profiles, parameter declaration from a defaults table,
the colour/depth subscription with time synchronisation (``message_filters`` where
installed, else :mod:`ccl_perception.sync`), and :func:`run_nodes`, the one
init/spin/shutdown body of every process. Message conversions are in
:mod:`ccl_perception.nodes.messages`.

Every node class takes ``**kwargs`` and forwards them to ``rclpy.node.Node`` (``cli_args``,
``namespace``, ``parameter_overrides``, ``context``), which is how ``bringup`` starts
several of them in one process.
"""

import signal
import sys
import threading

from ccl_perception.model_settings import DEFAULT_BACKEND, DEFAULT_DEVICE, DEFAULT_DOWNSCALE
from rclpy.qos import DurabilityPolicy, HistoryPolicy, QoSProfile, ReliabilityPolicy
from rclpy.qos import qos_profile_sensor_data

#: Camera input: best effort, keep last 5 (``rclpy.qos.qos_profile_sensor_data``).
SENSOR_QOS = qos_profile_sensor_data
#: Outputs: reliable keep-last-1 is received by both reliable and best-effort subscribers
#: (rviz, ros2 topic echo) and never builds a backlog.
OUTPUT_QOS = QoSProfile(depth=1, reliability=ReliabilityPolicy.RELIABLE,
                        history=HistoryPolicy.KEEP_LAST, durability=DurabilityPolicy.VOLATILE)
#: Status/confidence messages: a short reliable history so slow echo clients miss none.
STATUS_QOS = QoSProfile(depth=10, reliability=ReliabilityPolicy.RELIABLE)
#: Latched (transient local, keep last 1): scene, camera pose, grasp results.
LATCHED_QOS = QoSProfile(depth=1, durability=DurabilityPolicy.TRANSIENT_LOCAL)

# ---------------------------------------------------------------- topic names
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


def private(node_name: str, name: str) -> str:
    """Absolute name of node ``node_name``'s private topic/service ``~/x`` (``/node/x``)."""
    if not name.startswith('~/'):
        raise ValueError(f'{name!r} is not a private (~/) name')
    return f'/{node_name.strip("/")}/{name[2:]}'


def declare_parameters(node, defaults: dict) -> None:
    """Declare every ``name: default`` of ``defaults`` on ``node`` (types follow the defaults)."""
    for name, value in defaults.items():
        node.declare_parameter(name, value)


def param_values(node, names) -> dict:
    """Return the current values of the named parameters."""
    return {n: node.get_parameter(n).value for n in names}


#: The model parameters of every node that runs the descriptor network (defaults:
#: :mod:`ccl_perception.model_settings`).
MODEL_PARAMS = {
    'checkpoint': '',           # trained model (.pt); '' = the shipped default model
    'device': DEFAULT_DEVICE,   # 'cpu' or 'cuda[:i]'
    'backend': DEFAULT_BACKEND,  # 'torch' or 'onnx'
    # shrink camera images this many times before the model (2: 640x480 -> 320x240)
    'downscale': DEFAULT_DOWNSCALE,
}


def load_extractor(node):
    """
    ``(DescriptorExtractor, '')`` from the node's :data:`MODEL_PARAMS`, or ``(None, reason)``.

    A node without a model stays up and reports the reason on ``~/status``.
    """
    try:
        from ccl_perception.inference import DescriptorExtractor
        from ccl_perception.model_zoo import default_model_path
        p = param_values(node, MODEL_PARAMS)
        checkpoint = p['checkpoint'] or default_model_path()
        return DescriptorExtractor(checkpoint, device=p['device'], backend=p['backend'],
                                   downscale=int(p['downscale'])), ''
    except Exception as e:  # noqa: BLE001 - any load failure is reported, not raised
        reason = f'model not loaded: {e}'
        node.get_logger().error(reason)
        return None, reason


class LatestFrame:
    """
    A one-slot mailbox: subscription callbacks ``put``, the worker ``take``s the newest.

    Frames that are overwritten before being taken are counted in ``skipped``; the
    worker never sees a backlog.
    """

    def __init__(self):
        self._lock = threading.Lock()
        self._item = None
        self.received = 0
        self.skipped = 0

    def put(self, item) -> None:
        with self._lock:
            if self._item is not None:
                self.skipped += 1
            self._item = item
            self.received += 1

    def take(self):
        with self._lock:
            item, self._item = self._item, None
            return item

    def peek(self):
        """Return the newest item without taking it (``None`` if empty)."""
        with self._lock:
            return self._item


def subscribe_rgbd(node, callback, slop: float, queue_size: int, callback_group=None,
                   received: list = None):
    """
    Subscribe to colour + aligned depth, time-synchronised, calling ``callback(color, depth)``.

    Uses ``message_filters.ApproximateTimeSynchronizer`` when it is installed, else
    :class:`ccl_perception.sync.ApproximateSynchronizer`. Returns the objects to keep alive.

    Args:
        node: the node that owns the subscriptions.
        callback: called as ``callback(color, depth)`` with each synchronised pair of Images.
        slop: maximum stamp difference within a pair, seconds.
        queue_size: messages kept per topic while waiting for a partner.
        callback_group: the subscriptions' callback group (``None``: the node's default).
        received: optional ``{'colour': 0, 'depth': 0, ...}``: counts of the colour and depth
            messages that arrived (before synchronisation), for the "no frame" diagnostic.
    """
    from sensor_msgs.msg import Image
    try:
        import message_filters
    except ImportError:
        message_filters = None

    def count(i):
        if received is not None:
            received[('colour', 'depth')[i]] += 1
    if message_filters is not None:
        subs = [message_filters.Subscriber(node, Image, t, qos_profile=SENSOR_QOS,
                                           callback_group=callback_group)
                for t in (COLOR_TOPIC, DEPTH_TOPIC)]
        for i, sub in enumerate(subs):
            sub.registerCallback(lambda m, i=i: count(i))
        sync = message_filters.ApproximateTimeSynchronizer(subs, queue_size, slop)
        sync.registerCallback(callback)
        return subs + [sync]
    from ccl_perception.sync import ApproximateSynchronizer
    sync = ApproximateSynchronizer(2, slop, queue_size, callback)

    def add(i, m):
        count(i)
        sync.add(i, m)
    subs = [node.create_subscription(Image, t, lambda m, i=i: add(i, m), SENSOR_QOS,
                                     callback_group=callback_group)
            for i, t in enumerate((COLOR_TOPIC, DEPTH_TOPIC))]
    return subs + [sync]


def watch_input(node, period_s: float, counts, status_pub, prefix: str):
    """
    Say so when the input a node needs stopped for ``period_s`` seconds (a timer; returns it).

    A frame larger than the DDS transport delivers (e.g. 1280x720 rgb8 over UDP without
    shared memory), a wrong topic name or namespace and a stopped camera all look the
    same from inside a node: silence. ``counts()`` gives ``{what: messages received so
    far}``, the first entry being what the node needs (e.g. synchronised colour+depth
    pairs); :class:`ccl_perception.input_watch.InputWatch` words the reason from what did
    arrive. The warning is logged, published on ``status_pub`` after ``prefix`` and counted
    in ``node.counts['input_timeouts']``.
    """
    import time

    from ccl_perception.input_watch import InputWatch
    from std_msgs.msg import String
    watch = InputWatch(period_s)

    def tick():
        text = watch.tick(time.monotonic(), dict(counts()))
        if text is not None:
            node.counts['input_timeouts'] = node.counts.get('input_timeouts', 0) + 1
            node.get_logger().warning(text)
            status_pub.publish(String(data=prefix + text))
    return node.create_timer(float(period_s) / 2, shutdown_tolerant(node, tick))


def shutdown_tolerant(node, process):
    """
    Wrap a callback so errors raised while the node or its context shut down are dropped.

    Publishers become invalid mid-callback when the node is destroyed (rclpy raises
    ``InvalidHandle``: "cannot use Destroyable because destruction was requested") or the
    context shuts down; those are dropped, every other error propagates.
    """
    from rclpy.exceptions import InvalidHandle

    def callback(*args):
        try:
            return process(*args)
        except InvalidHandle:
            return None
        except Exception:  # noqa: BLE001
            if node.context.ok():
                raise
            return None
    return callback


class NodeRunner:
    """
    ``rclpy.init`` -> nodes -> one SingleThreadedExecutor -> clean shutdown.

    The one body behind every ``main()``, ``bringup`` and the demo (:func:`run_nodes` is
    the foreground form). Single-threaded on purpose: rclpy's MultiThreadedExecutor
    busy-polls its task list in Python and starves the frame-processing callbacks of the
    GIL (``training/soak_planner.py``, README). Work that takes seconds (a grasp) runs on
    its own thread inside the node (``GraspExecutorNode``), so callbacks stay short.

    Args:
        factory: ``factory(context) -> Node | list of Nodes | {name: Node}``; nodes are
            created after ``rclpy.init`` in the runner's own context.
        args: ROS command-line arguments for ``rclpy.init`` (``--ros-args ...``).

    Nodes are destroyed in reverse order of creation; a node may override
    ``destroy_node`` to stop its threads and free what it owns (the sim world).
    """

    def __init__(self, factory, args=None):
        import rclpy
        from rclpy.executors import SingleThreadedExecutor

        self.context = rclpy.context.Context()
        rclpy.init(args=args, context=self.context)
        self.nodes = {}
        self.executor = None
        self._thread = None
        self._closing = False
        try:
            made = factory(self.context)
            if isinstance(made, dict):
                self.nodes = dict(made)
            else:
                made = [made] if hasattr(made, 'get_name') else list(made)
                self.nodes = {n.get_name(): n for n in made}
            self.executor = SingleThreadedExecutor(context=self.context)
            for n in self.nodes.values():
                self.executor.add_node(n)
        except BaseException:
            self.close()
            raise

    def spin(self) -> None:
        """Spin in this thread until Ctrl-C or an external shutdown."""
        from rclpy.executors import ExternalShutdownException
        try:
            self.executor.spin()
        except (KeyboardInterrupt, ExternalShutdownException):
            pass
        except Exception:  # noqa: BLE001 - raised by a wait set torn down in close()
            if not self._closing:
                raise

    def spin_in_background(self) -> 'NodeRunner':
        """Spin on a daemon thread (the demo and tests drive the nodes from this one)."""
        self._thread = threading.Thread(target=self.spin, name='ccl_node_runner', daemon=True)
        self._thread.start()
        return self

    @classmethod
    def start_in_background(cls, factory, args=None) -> 'NodeRunner':
        """
        Build the nodes *and* spin them on one daemon thread; return once they are built.

        For nodes whose callbacks must run on the thread that made them: the sim world's
        OpenGL (EGL) context is current only in the thread that created it, and its renders
        from any other thread are black.

        Raises:
            whatever the factory raised.
        """
        built, box = threading.Event(), {}

        def run():
            try:
                box['runner'] = cls(factory, args)
            except BaseException as e:  # noqa: BLE001 - re-raised in the caller's thread
                box['error'] = e
                return
            finally:
                built.set()
            box['runner'].spin()

        thread = threading.Thread(target=run, name='ccl_node_runner', daemon=True)
        thread.start()
        built.wait()
        if 'error' in box:
            thread.join()
            raise box['error']
        box['runner']._thread = thread
        return box['runner']

    def close(self) -> None:
        """
        Stop spinning, destroy the nodes (reverse order) and shut the context down.

        The spinning thread is joined before any node is destroyed: a callback still running
        (a slow frame) finishes with valid publishers, so no callback fails with "cannot use
        Destroyable because destruction was requested" (rclpy's ``Executor.shutdown`` does
        not wait for running callbacks).
        """
        self._closing = True
        if self.executor is not None:
            self.executor.shutdown(timeout_sec=2.0)
        if self._thread is not None:
            self._thread.join(timeout=60.0)
            if self._thread.is_alive():
                print('NodeRunner: a callback is still running after 60 s; '
                      'destroying the nodes anyway', file=sys.stderr)
        for node in reversed(list(self.nodes.values())):
            node.destroy_node()
        self.nodes = {}
        if self.context.ok():
            self.context.try_shutdown()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def _sigint_ignored() -> bool:
    """Tell whether this process started with SIGINT ignored (main thread only)."""
    return (threading.current_thread() is threading.main_thread()
            and signal.getsignal(signal.SIGINT) is signal.SIG_IGN)


def _stop_on_sigint() -> None:
    """
    Make SIGINT stop a process that was started with SIGINT ignored.

    A process started in the background of a non-interactive shell (``node &`` in a
    script, CI runners) inherits SIGINT as ignored, so Python installs no KeyboardInterrupt
    handler and rclpy's handler (installed by ``rclpy.init``) chains to "ignore": ``kill
    -INT`` and ``ros2 launch``'s shutdown (SIGINT first) were ignored and the node was only
    killed by the escalation. A ROS node is stopped with SIGINT, so after ``rclpy.init``
    rclpy's handlers are put back on top of Python's default one.
    """
    from rclpy.signals import install_signal_handlers, uninstall_signal_handlers

    uninstall_signal_handlers()
    signal.signal(signal.SIGINT, signal.default_int_handler)
    install_signal_handlers()


def run_nodes(factory, args=None, prog: str = None) -> int:
    """
    Run the ``main()`` body of every process: :class:`NodeRunner` in the foreground.

    A node that cannot start (bad parameter, missing dependency) ends the process with
    one line on stderr, ``<prog>: error: <reason>``, and exit code 2; Ctrl-C exits 0.
    """
    prog = prog or (sys.argv[0].rsplit('/', 1)[-1] if sys.argv and sys.argv[0] else 'node')
    sigint_ignored = _sigint_ignored()
    try:
        runner = NodeRunner(factory, args)
    except KeyboardInterrupt:
        return 0
    except (ValueError, ImportError, RuntimeError, OSError) as e:
        print(f'{prog}: error: {e}', file=sys.stderr)
        return 2
    if sigint_ignored:
        _stop_on_sigint()
    with runner:
        runner.spin()
    return 0


def node_main(node_cls, args=None, prog: str = None) -> int:
    """Run the ``main()`` of a one-node process: ``run_nodes`` of ``node_cls(context=...)``."""
    return run_nodes(lambda context: node_cls(context=context), args, prog)
