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
Package structure, read with ``ast`` (nothing is imported).

* no import circle between the package's modules, counting imports inside functions too
  (a lazy import is still a dependency: ``sim/robot.py`` <-> ``executors/sim_executor.py``
  was one);
* every node file stays a thin adapter (under 200 lines), and so does every module of
  ``nodes/`` (names, QoS, parameters, inputs, runner, messages);
* nodes take topic and service names only from the constants in ``nodes/names.py``;
* importing a topic name needs no rclpy (checked in a subprocess where rclpy cannot be imported).
* every module of ``learning/`` has one job and at most 300 lines (``trainer.py`` included);
* a training method is named only in ``learning/methods.py`` (and in the YAML configs): the
  package and the training CLIs read the names from its table (tests may name them).
"""
import ast
import glob
import os
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PKG = os.path.join(ROOT, 'ccl_perception')
NODE_FILES = sorted(glob.glob(os.path.join(PKG, 'nodes', '*_node.py')))


def module_name(path: str) -> str:
    rel = os.path.relpath(path, ROOT)[:-3].replace(os.sep, '.')
    return rel[:-len('.__init__')] if rel.endswith('.__init__') else rel


def import_graph() -> dict:
    """Return ``{module: {imported package modules}}`` (``from pkg import mod``: ``pkg.mod``)."""
    files = glob.glob(os.path.join(PKG, '**', '*.py'), recursive=True)
    modules = {module_name(f): f for f in files}
    graph = {}
    for name, path in modules.items():
        is_pkg = path.endswith('__init__.py')
        deps = set()
        for node in ast.walk(ast.parse(open(path).read(), path)):
            targets = []
            if isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                if node.level:  # relative
                    base = name.split('.')[:len(name.split('.')) - node.level + is_pkg]
                    mod = '.'.join(base + ([node.module] if node.module else []))
                else:
                    mod = node.module or ''
                targets = [f'{mod}.{a.name}' for a in node.names] + [mod]
            for t in targets:
                while t and t not in modules:  # pkg.mod.attr -> pkg.mod
                    t = t.rpartition('.')[0]
                if t and t != name:
                    deps.add(t)
        graph[name] = deps
    return graph


def find_cycle(graph: dict):
    """Return a list of modules forming a circle, or None (depth-first search)."""
    state, stack = {}, []

    def visit(n):
        state[n] = 'open'
        stack.append(n)
        for m in sorted(graph.get(n, ())):
            if state.get(m) == 'open':
                return stack[stack.index(m):] + [m]
            if m not in state:
                found = visit(m)
                if found:
                    return found
        stack.pop()
        state[n] = 'done'
        return None

    for n in sorted(graph):
        if n not in state:
            found = visit(n)
            if found:
                return found
    return None


def test_cycle_finder_finds_a_circle():
    assert find_cycle({'a': {'b'}, 'b': {'c'}, 'c': {'a'}}) == ['a', 'b', 'c', 'a']
    assert find_cycle({'a': {'b'}, 'b': {'c'}, 'c': set()}) is None


def test_no_import_circle_in_the_package():
    graph = import_graph()
    # module-level and function-level imports are both edges
    assert 'ccl_perception.sim.robot' in graph['ccl_perception.executors.sim_executor']
    assert 'ccl_perception.executors.sim_executor' in graph['ccl_perception.bringup']  # lazy
    assert find_cycle(graph) is None, ' -> '.join(find_cycle(graph))


def test_sim_world_is_not_an_executor():
    graph = import_graph()
    assert not {m for m in graph['ccl_perception.sim.robot']
                if m.startswith('ccl_perception.executors')}


#: Lines of the licence header every file starts with (test_copyright.py), not counted.
HEADER_LINES = 14
#: The most lines a node file may have, header not counted (ros2/demos: 40-200 lines per node);
#: parameter tables and checks live in ROS-free modules (``node_limits.py``).
NODE_FILE_LIMIT = 199


def test_node_files_are_thin():
    assert len(NODE_FILES) >= 5
    for path in NODE_FILES + [os.path.join(PKG, 'nodes', 'messages.py')]:
        n = len(open(path).read().splitlines()) - HEADER_LINES
        assert n <= NODE_FILE_LIMIT, \
            f'{os.path.relpath(path, ROOT)} has {n} lines (limit {NODE_FILE_LIMIT})'


#: The shared modules of ``nodes/``, one concern each, capped like the node files.
NODES_SHARED = ('__init__', 'names', 'qos', 'params', 'inputs', 'runner', 'messages')


def test_every_module_of_nodes_is_capped():
    found = {os.path.basename(p)[:-3] for p in glob.glob(os.path.join(PKG, 'nodes', '*.py'))}
    assert set(NODES_SHARED) <= found
    for path in sorted(glob.glob(os.path.join(PKG, 'nodes', '*.py'))):
        n = len(open(path).read().splitlines()) - HEADER_LINES
        assert n <= NODE_FILE_LIMIT, \
            f'{os.path.relpath(path, ROOT)} has {n} lines (limit {NODE_FILE_LIMIT})'


#: A finder that makes rclpy (and every ROS message package) unimportable.
NO_ROS = """
import sys
class NoRos:
    def find_spec(self, name, path=None, target=None):
        if name.split('.')[0] in ('rclpy', 'rcl_interfaces', 'std_msgs', 'sensor_msgs',
                                  'geometry_msgs', 'std_srvs', 'visualization_msgs'):
            raise ImportError('no ROS here: ' + name)
sys.meta_path.insert(0, NoRos())
"""


def _run_without_ros(code: str) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHONPATH=ROOT + os.pathsep + os.environ.get('PYTHONPATH', ''))
    return subprocess.run([sys.executable, '-c', NO_ROS + code], capture_output=True,
                          text=True, timeout=120, env=env)


def test_topic_names_import_without_rclpy():
    out = _run_without_ros(
        'from ccl_perception.nodes import COLOR_TOPIC, RESULT_TOPIC, private\n'
        'from ccl_perception.nodes.names import CAMERA_TOPICS\n'
        'loaded = [m for m in sys.modules if m.startswith(("rclpy", "ccl_perception.nodes."))]\n'
        'print(COLOR_TOPIC, private("grasp_executor", RESULT_TOPIC), len(CAMERA_TOPICS), loaded)')
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ['camera/color/image_raw', '/grasp_executor/result', '4',
                                  "['ccl_perception.nodes.names']"]


def test_the_finder_really_hides_rclpy():
    # the check above is worth something only if rclpy cannot be imported under NO_ROS
    out = _run_without_ros('from ccl_perception.nodes import SENSOR_QOS')
    assert out.returncode != 0 and 'no ROS here: rclpy' in out.stderr, out.stderr[-500:]


def test_topic_and_service_names_come_from_the_constants():
    creators = {'create_publisher': 1, 'create_subscription': 1, 'create_service': 1,
                'create_client': 1}
    bad = []
    for path in NODE_FILES:
        for node in ast.walk(ast.parse(open(path).read())):
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) \
                    and node.func.attr in creators and len(node.args) > creators[node.func.attr]:
                name = node.args[creators[node.func.attr]]
                if not isinstance(name, ast.Name) or not name.id.isupper():
                    bad.append(f'{os.path.basename(path)}:{node.lineno} {ast.unparse(name)}')
    assert bad == []


#: The most lines a module of ``learning/`` may have, licence header included.
LEARNING_FILE_LIMIT = 300


def test_learning_modules_are_small():
    files = sorted(glob.glob(os.path.join(PKG, 'learning', '*.py')))
    assert len(files) >= 15
    sizes = {os.path.basename(f): len(open(f).read().splitlines()) for f in files}
    assert {k: n for k, n in sizes.items() if n > LEARNING_FILE_LIMIT} == {}


def method_names_in_the_table() -> set:
    """Return the names of ``Method('<name>', ...)`` in learning/methods.py (by ``ast``)."""
    tree = ast.parse(open(os.path.join(PKG, 'learning', 'methods.py')).read())
    return {node.args[0].value for node in ast.walk(tree)
            if isinstance(node, ast.Call) and getattr(node.func, 'id', '') == 'Method'
            and node.args and isinstance(node.args[0], ast.Constant)}


def method_name_literals(path: str, names: set) -> list:
    """``file:line text`` of every string literal that is a method name or sets ``method=``."""
    found = []
    for node in ast.walk(ast.parse(open(path).read(), path)):
        if isinstance(node, ast.Constant) and isinstance(node.value, str):
            text = node.value
            if text in names or any(f'method={n}' in text or f'method: {n}' in text
                                    for n in names):
                found.append(f'{os.path.relpath(path, ROOT)}:{node.lineno} {text!r}')
    return found


#: String literals equal to a method name that are not one (file: the literal's meaning).
NOT_A_METHOD = {'ccl_perception/ccl_cli.py': "PROG = 'ccl', the console script's name"}


def test_method_names_appear_only_in_the_method_table(tmp_path):
    names = method_names_in_the_table()
    assert names == {'identical_view', 'ccl', 'ccl_iv', 'supervised'}
    files = glob.glob(os.path.join(PKG, '**', '*.py'), recursive=True) + \
        glob.glob(os.path.join(ROOT, 'training', '*.py'))
    table = os.path.join(PKG, 'learning', 'methods.py')
    assert method_name_literals(table, names)  # the finder sees the table's own names
    hits = [hit for f in sorted(files) if f != table for hit in method_name_literals(f, names)]
    # the exemptions are exact: one literal 'ccl' in ccl_cli.py, nothing else there
    assert [h for h in hits if h.split(':')[0] not in NOT_A_METHOD] == []
    assert [h.split(' ', 1)[1] for h in hits] == ["'ccl'"]
    planted = tmp_path / 'planted.py'
    planted.write_text("if cfg['method'] == 'ccl_iv':\n    x = ['method=supervised']\n")
    assert len(method_name_literals(str(planted), names)) == 2
