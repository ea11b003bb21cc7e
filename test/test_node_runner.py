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
A node process stops on SIGINT: from a terminal (Ctrl-C), and when started with SIGINT ignored.

The process is given a second to block in ``rcl_wait`` before the signal: a node without
timers then has nothing that wakes it but rclpy's SIGINT handler (``runner.stop_on_sigint``).
"""
import os
import select
import signal
import subprocess
import sys
import time

import pytest

SCRIPT = """
import sys
import rclpy
from ccl_perception.nodes import run_nodes

def factory(context):
    node = rclpy.create_node('sigint_probe_%d' % __import__('os').getpid(), context=context)
    timer = []
    def once():
        print('spinning', flush=True)
        timer[0].cancel()
    timer.append(node.create_timer(0.05, once))
    return node

sys.exit(run_nodes(factory, prog='sigint_probe'))
"""


def _ignore_sigint():
    # what a non-interactive shell does to a command started with '&'
    signal.signal(signal.SIGINT, signal.SIG_IGN)


@pytest.mark.parametrize('inherited', ['ignored', 'default'])
def test_run_nodes_exits_0_on_sigint(inherited):
    pytest.importorskip('rclpy')
    env = dict(os.environ, ROS_AUTOMATIC_DISCOVERY_RANGE='LOCALHOST')
    proc = subprocess.Popen(
        [sys.executable, '-c', SCRIPT], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
        text=True, env=env,
        preexec_fn=_ignore_sigint if inherited == 'ignored' else None)
    try:
        line = proc.stdout.readline()
        assert line.strip() == 'spinning', line + proc.stdout.read()
        time.sleep(1.0)  # blocked in rcl_wait now: its only timer has been cancelled
        proc.send_signal(signal.SIGINT)
        out, _ = proc.communicate(timeout=30)
    except subprocess.TimeoutExpired:
        proc.kill()
        out, _ = proc.communicate()
        pytest.fail(f'SIGINT ({inherited} at start) did not stop the node in 30 s: {out[-1000:]}')
    assert proc.returncode == 0, out[-2000:]


def _read_until(fd, text: str, timeout: float) -> str:
    out, end = b'', time.monotonic() + timeout
    while text.encode() not in out and time.monotonic() < end:
        if select.select([fd], [], [], 0.2)[0]:
            try:
                out += os.read(fd, 4096)
            except OSError:  # the child closed the terminal
                break
    return out.decode(errors='replace')


def test_target_maker_stops_on_ctrl_c_in_a_terminal(tmp_path):
    """
    ``target_maker_node`` in a pseudo-terminal, Ctrl-C typed: it exits 0.

    Before the fix it has no timer, and its own rclpy context got no SIGINT handler, so
    it waited in rcl_wait for a message that never came.
    """
    import pty
    pytest.importorskip('rclpy')
    ck = str(tmp_path / 'missing.pt')  # the node stays up without a model (and starts fast)
    env = dict(os.environ, ROS_AUTOMATIC_DISCOVERY_RANGE='LOCALHOST')
    pid, fd = pty.fork()
    if pid == 0:  # the child: the node, its stdin/stdout/stderr the terminal
        os.execve(sys.executable, [sys.executable, '-m', 'ccl_perception.nodes.target_maker_node',
                                   '--ros-args', '-r', f'__node:=maker_tty{os.getpid()}',
                                   '-p', f'checkpoint:={ck}'], env)
    status = None
    try:
        out = _read_until(fd, 'target maker ready', 120.0)
        assert 'target maker ready' in out, out[-2000:]
        time.sleep(1.0)
        os.write(fd, b'\x03')  # Ctrl-C: the terminal sends SIGINT to its foreground process
        end = time.monotonic() + 20.0
        while status is None and time.monotonic() < end:
            done, code = os.waitpid(pid, os.WNOHANG)
            status = code if done else None
            out += _read_until(fd, '\0', 0.2)
        assert status is not None, f'Ctrl-C did not stop target_maker_node in 20 s: {out[-1000:]}'
        assert os.waitstatus_to_exitcode(status) == 0, out[-2000:]
    finally:
        if status is None:
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
        os.close(fd)
