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


"""A node process stops on SIGINT even when it was started with SIGINT ignored."""
import os
import signal
import subprocess
import sys

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
        proc.send_signal(signal.SIGINT)
        out, _ = proc.communicate(timeout=30)
    except subprocess.TimeoutExpired:
        proc.kill()
        out, _ = proc.communicate()
        pytest.fail(f'SIGINT ({inherited} at start) did not stop the node in 30 s: {out[-1000:]}')
    assert proc.returncode == 0, out[-2000:]
