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


"""The one init/spin/shutdown body of every process (:class:`NodeRunner`), stopped by SIGINT."""

import signal
import sys
import threading


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


def stop_on_sigint() -> None:
    """
    Make SIGINT stop this process's spinning executor (main thread, after ``rclpy.init``).

    ``rclpy.init`` installs its handlers for the *default* context only; a NodeRunner has its
    own, so nothing woke an executor blocked in ``rcl_wait`` and a node without timers
    (``target_maker_node``) ignored Ctrl-C. And a process started in the background of a
    non-interactive shell (``node &``, CI) inherits SIGINT as ignored. So Python's default
    handler is put back and rclpy's SIGINT handler (it wakes every executor) installed on top.
    """
    from rclpy.signals import (install_signal_handlers, SignalHandlerOptions,
                               uninstall_signal_handlers)

    uninstall_signal_handlers()
    signal.signal(signal.SIGINT, signal.default_int_handler)
    install_signal_handlers(SignalHandlerOptions.SIGINT)


def run_nodes(factory, args=None, prog: str = None) -> int:
    """
    Run the ``main()`` body of every process: :class:`NodeRunner` in the foreground.

    A node that cannot start (bad parameter, missing dependency) ends the process with
    one line on stderr, ``<prog>: error: <reason>``, and exit code 2; Ctrl-C (SIGINT, also
    when the process started with it ignored) exits 0.
    """
    prog = prog or (sys.argv[0].rsplit('/', 1)[-1] if sys.argv and sys.argv[0] else 'node')
    try:
        runner = NodeRunner(factory, args)
    except KeyboardInterrupt:
        return 0
    except (ValueError, ImportError, RuntimeError, OSError) as e:
        from ccl_perception.cli import fail
        return fail(prog, e)
    if threading.current_thread() is threading.main_thread():
        stop_on_sigint()
    with runner:
        runner.spin()
    return 0


def node_main(node_cls, args=None, prog: str = None) -> int:
    """Run the ``main()`` of a one-node process: ``run_nodes`` of ``node_cls(context=...)``."""
    return run_nodes(lambda context: node_cls(context=context), args, prog)
