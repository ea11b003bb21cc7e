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
Start the grasping pipeline's nodes in one process, from the same table as the launch file.

``launch/grasp.launch.py`` (``ros2 launch ccl_perception grasp.launch.py``) and this
module (console script ``bringup``, for machines without ``launch``) both build their
nodes from :func:`node_specs`, so they start the same nodes with the same parameters
(config/<node>.yaml merged with the launch arguments) and remappings;
test/test_launch.py checks it.

Usage::

    bringup checkpoint:=runs/ccl/model.pt target:=mug target_dir:=targets sim:=true
    bringup --config my_bringup.yaml        # YAML: {arguments: {...}, nodes: [names]}
    bringup sim:=false executor_backend:=moveit --nodes descriptor_node grasp_planner
    bringup checkpoint:=m.pt --ros-args --log-level debug   # after --ros-args: ROS arguments

Launch arguments (``name:=value``; :data:`LAUNCH_ARGUMENTS`): ``checkpoint``, ``downscale``,
``device``, ``backend``, ``target``, ``target_dir``, ``config_dir`` (folder of the
``<node>.yaml`` files), ``camera_ns`` (camera topic prefix, ``camera``; realsense-ros 4.x:
``camera/camera``), ``executor_backend`` (``sim`` | ``moveit``), ``sim`` (start the
simulated world), ``rviz`` (launch file only: bringup prints the rviz2 command). Every one
defaults to "not given": a node parameter that is not given comes from config/<node>.yaml
(the file wins over nothing, a given argument wins over the file).

Nodes are imported by ``module:Class``; a node whose module is missing or fails to
import stops the bringup with an error naming it (use ``--nodes`` to start a subset).
"""

from dataclasses import dataclass, field
import importlib
import os
import sys
from typing import Dict, List, Optional, Tuple

import yaml

PACKAGE = 'ccl_perception'

#: What an argument that is not given means: its node parameters come from the YAML files.
NOT_GIVEN = ''
_FROM_YAML = '; not given: config/<node>.yaml'
#: name -> (default, description). Values are strings, as in ``ros2 launch``; every default
#: is :data:`NOT_GIVEN`, so a launch argument never silently overrides config/*.yaml.
LAUNCH_ARGUMENTS = {
    'checkpoint': (NOT_GIVEN, 'descriptor model checkpoint (.pt)' + _FROM_YAML
                   + ' (there "" = the shipped default model)'),
    'downscale': (NOT_GIVEN, 'shrink camera images this many times before the model '
                  '(2: 640x480 -> 320x240), integer in [1, 8]' + _FROM_YAML),
    'device': (NOT_GIVEN, 'torch device of the descriptor model (cpu, cuda, cuda:1)' + _FROM_YAML),
    'backend': (NOT_GIVEN, 'descriptor inference backend: torch or onnx' + _FROM_YAML),
    'target': (NOT_GIVEN, 'grasp target: a name in target_dir or a .npz path' + _FROM_YAML),
    'target_dir': (NOT_GIVEN, 'directory of target .npz files (make_target output)' + _FROM_YAML),
    'config_dir': (NOT_GIVEN, 'folder of the <node>.yaml parameter files; '
                   "not given: the package's config/"),
    'camera_ns': (NOT_GIVEN, 'camera topic prefix; not given: camera '
                  '(realsense-ros 4.x publishes under camera/camera)'),
    'executor_backend': (NOT_GIVEN, 'grasp executor backend: sim or moveit; '
                         'not given: config/grasp_executor.yaml'),
    'sim': (NOT_GIVEN, 'start the simulated world (pybullet camera + arm); '
            'not given: when the executor backend is sim'),
    'rviz': (NOT_GIVEN, 'start rviz2 with config/ccl.rviz (launch file only); not given: false'),
}
#: Launch arguments that set the same-named parameter of every node that runs the model.
MODEL_ARGUMENTS = ('checkpoint', 'device', 'backend', 'downscale')


@dataclass
class NodeSpec:
    """
    One node of the pipeline.

    Attributes:
        name: node name (also the key in its params file).
        executable: console script started by the launch file.
        entry: ``'module:Class'`` instantiated by bringup.
        params_file: file name in config/.
        parameters: overrides from the launch arguments (merged over the file).
        remappings: ``(from, to)`` topic remappings.
        host: name of another spec whose process also runs this node (the sim
            executor shares the sim world's pybullet client); the launch file then
            starts no process of its own for it.
        config_dir: folder of ``params_file`` (``''``: :func:`config_dir`).
    """

    name: str
    executable: str
    entry: str
    params_file: str
    parameters: Dict[str, object] = field(default_factory=dict)
    remappings: List[Tuple[str, str]] = field(default_factory=list)
    host: Optional[str] = None
    config_dir: str = ''


def config_dir() -> str:
    """config/ of the source tree (editable install) or of the installed share directory."""
    src = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), 'config')
    if os.path.isdir(src):
        return src
    from ament_index_python.packages import get_package_share_directory
    return os.path.join(get_package_share_directory(PACKAGE), 'config')


def _truthy(value) -> bool:
    return str(value).strip().lower() in ('1', 'true', 'yes', 'on')


#: Words ``sim`` / ``rviz`` accept (anything else is an error, not silently false).
BOOLEAN_WORDS = ('true', 'false', '1', '0', 'yes', 'no', 'on', 'off')


def resolve_arguments(overrides: Optional[dict] = None) -> Dict[str, str]:
    """
    Every name of :data:`LAUNCH_ARGUMENTS`: its value in ``overrides``, else :data:`NOT_GIVEN`.

    Raises:
        ValueError: an unknown name, or a given value outside its choices (``sim`` / ``rviz``
            booleans, ``backend``, ``executor_backend``, ``device``, ``downscale``, a
            ``config_dir`` that is not a folder), naming it.
    """
    from ccl_perception import model_settings
    from ccl_perception.validation import choice
    args = {k: v[0] for k, v in LAUNCH_ARGUMENTS.items()}
    for k, v in (overrides or {}).items():
        if k not in args:
            raise ValueError(f'unknown launch argument {k!r}; known: {", ".join(args)}')
        args[k] = NOT_GIVEN if v is None else str(v)
    given = {k: v for k, v in args.items() if v != NOT_GIVEN}
    for k in {'sim', 'rviz'} & set(given):
        choice(*BOOLEAN_WORDS).check(k, given[k].strip().lower())
    for k in {'device', 'backend'} & set(given):
        model_settings.LIMITS[k].check(k, given[k])
    if 'downscale' in given:
        model_settings.parse_downscale(given['downscale'])
    if 'executor_backend' in given:
        choice('sim', 'moveit').check('executor_backend', given['executor_backend'])
    if 'config_dir' in given and not os.path.isdir(given['config_dir']):
        raise ValueError(f"config_dir = {given['config_dir']!r} is not a folder")
    return args


def _given(a: dict, names) -> dict:
    """Return the given launch arguments among ``names`` as node parameters (downscale: int)."""
    from ccl_perception.model_settings import parse_downscale
    return {k: parse_downscale(a[k]) if k == 'downscale' else a[k]
            for k in names if a[k] != NOT_GIVEN}


def node_specs(arguments: Optional[dict] = None) -> List[NodeSpec]:
    """
    Return the pipeline's nodes for the given launch arguments (strings).

    Each spec's ``parameters`` hold only what the arguments give; the rest comes from its
    params file (:func:`merged_parameters`). The executor backend not given is the one of
    config/grasp_executor.yaml, and ``sim`` not given follows it (sim backend: sim world).
    """
    a = resolve_arguments(arguments)
    from ccl_perception.nodes import CAMERA_PREFIX, CAMERA_TOPICS
    ns = (a['camera_ns'] or CAMERA_PREFIX).strip('/')
    remap = [] if ns == CAMERA_PREFIX else [
        (t, ns + t[len(CAMERA_PREFIX):]) for t in CAMERA_TOPICS]
    cfg = a['config_dir']

    def spec(name, executable, entry, params, remappings, host=None):
        return NodeSpec(name, executable, entry, name + '.yaml', params, list(remappings),
                        host, cfg)
    executor = spec('grasp_executor', 'grasp_executor_node',
                    'ccl_perception.nodes.grasp_executor_node:GraspExecutorNode',
                    _given({**a, 'backend': a['executor_backend']}, ['backend']), [])
    from ccl_perception.node_limits import EXECUTOR_LIMITS, EXECUTOR_PARAMS
    backend = EXECUTOR_LIMITS['backend'].check('grasp_executor backend', merged_parameters(
        executor).get('backend', EXECUTOR_PARAMS['backend']))  # not in the file: the node's
    sim = _truthy(a['sim']) if a['sim'] != NOT_GIVEN else backend == 'sim'
    model = _given(a, MODEL_ARGUMENTS)
    specs = [
        spec('descriptor_node', 'descriptor_node',
             'ccl_perception.nodes.descriptor_node:DescriptorNode', dict(model), remap),
        spec('grasp_planner', 'grasp_planner_node',
             'ccl_perception.nodes.grasp_planner_node:GraspPlanner',
             {**model, **_given(a, ('target', 'target_dir'))}, remap),
        spec('target_maker', 'target_maker_node',
             'ccl_perception.nodes.target_maker_node:TargetMaker',
             {**model, **_given(a, ('target_dir',))}, remap),
    ]
    if sim:
        specs.append(spec('sim_world', 'sim_world_node',
                          'ccl_perception.nodes.sim_world_node:SimWorldNode',
                          {'run_executor': backend == 'sim'}, remap))
    if backend == 'sim' and not sim:
        raise ValueError('executor_backend:=sim needs the simulated world (sim:=true); '
                         'use executor_backend:=moveit')
    executor.host = 'sim_world' if backend == 'sim' else None
    return specs + [executor]


def file_parameters(spec: NodeSpec, directory: Optional[str] = None) -> dict:
    """``ros__parameters`` of ``spec``'s node in its params file (``{}`` if the file is absent)."""
    path = os.path.join(directory or spec.config_dir or config_dir(), spec.params_file)
    if not os.path.isfile(path):
        return {}
    with open(path) as f:
        data = yaml.safe_load(f) or {}
    section = data.get(spec.name) or data.get('/' + spec.name) or data.get('/**') or {}
    return dict(section.get('ros__parameters') or {})


def merged_parameters(spec: NodeSpec, directory: Optional[str] = None) -> dict:
    """File parameters overridden by the given launch arguments (``spec.parameters``)."""
    return {**file_parameters(spec, directory), **spec.parameters}


def _ros_parameters(params: dict):
    from rclpy.parameter import Parameter
    return [Parameter(k, value=v) for k, v in params.items()
            if not (isinstance(v, list) and not v)]


def create_nodes(specs: List[NodeSpec], context=None, extra_kwargs: Optional[dict] = None):
    """
    Instantiate the specs' node classes in this process.

    A hosted node (the sim executor) is composed with its host: it gets
    ``executor=world_executor(host.world)``. ``extra_kwargs``: ``{node name: {kwarg: value}}``
    passed to that node's constructor (e.g. ``{'sim_world': {'world': SimWorld(...)}}``).
    Raises ``RuntimeError`` naming a node whose module cannot be imported or that fails to start.
    """
    nodes = {}
    try:
        for spec in specs:
            module_name, cls_name = spec.entry.split(':')
            try:
                cls = getattr(importlib.import_module(module_name), cls_name)
            except (ImportError, AttributeError) as e:
                raise RuntimeError(f'cannot start node {spec.name!r}: {spec.entry} '
                                   f'is not importable ({e})') from e
            remap_args = [a for f, t in spec.remappings for a in ('-r', f'{f}:={t}')]
            kwargs = {'parameter_overrides': _ros_parameters(merged_parameters(spec)),
                      'cli_args': ['--ros-args'] + remap_args}
            if context is not None:
                kwargs['context'] = context
            kwargs.update((extra_kwargs or {}).get(spec.name, {}))
            if spec.host is not None:
                if spec.host not in nodes:
                    raise RuntimeError(
                        f'node {spec.name!r} needs {spec.host!r} in the same process')
                from ccl_perception.executors.sim_executor import world_executor
                kwargs['executor'] = world_executor(nodes[spec.host].world)
            try:
                nodes[spec.name] = cls(**kwargs)
            except Exception as e:  # noqa: BLE001 - e.g. moveit_py missing for the moveit executor
                raise RuntimeError(f'cannot start node {spec.name!r} ({spec.entry}): '
                                   f'{type(e).__name__}: {e}') from e
    except RuntimeError:
        for n in reversed(list(nodes.values())):
            n.destroy_node()
        raise
    return nodes


def read_bringup_config(path: str) -> dict:
    """
    Read the ``--config`` YAML: ``{arguments: {name: value}, nodes: [names]}``.

    ``ValueError`` naming the file and the problem (missing, not YAML, wrong shape).
    """
    if not os.path.isfile(path):
        raise ValueError(f'--config {path!r} does not exist')
    try:
        with open(path, encoding='utf-8') as f:
            cfg = yaml.safe_load(f) or {}
    except yaml.YAMLError as e:
        raise ValueError(f'--config {path} is not valid YAML: {e}') from None
    if not isinstance(cfg, dict) or set(cfg) - {'arguments', 'nodes'}:
        raise ValueError(f'--config {path} must be a mapping with keys arguments and nodes only')
    if not isinstance(cfg.get('arguments') or {}, dict):
        raise ValueError(f'--config {path}: arguments must be a mapping name: value')
    nodes = cfg.get('nodes')
    if nodes is not None and not (isinstance(
            nodes, list) and all(isinstance(n, str) for n in nodes)):
        raise ValueError(f'--config {path}: nodes must be a list of node names')
    return cfg


def parse_argv(argv: List[str]):
    """``name:=value`` launch arguments plus ``--config`` / ``--nodes`` options."""
    from ccl_perception.cli import ArgumentParser
    p = ArgumentParser(prog='bringup', description=__doc__.split('\n\n')[0])
    p.add_argument(
        '--config',
        help='YAML with optional keys arguments (dict) and nodes (list of names)')
    p.add_argument('--nodes', nargs='+', help='start only these node names')
    p.add_argument('assignments', nargs='*', help='launch arguments name:=value')
    ns = p.parse_args(argv)
    args, names = {}, None
    if ns.config:
        cfg = read_bringup_config(ns.config)
        args.update({k: str(v) for k, v in (cfg.get('arguments') or {}).items()})
        names = cfg.get('nodes')
    for a in ns.assignments:
        if ':=' not in a:
            p.error(f'launch arguments are name:=value, got {a!r}')
        k, v = a.split(':=', 1)
        args[k] = v
    return args, ns.nodes or names


def main(argv=None) -> int:
    """
    Console script ``bringup``: the chosen nodes in one process, one single-threaded executor.

    Exit codes: 0 after Ctrl-C, 2 for bad arguments or a node that cannot start.
    """
    from ccl_perception.nodes import run_nodes

    argv = sys.argv[1:] if argv is None else list(argv)
    ros_args = argv[argv.index('--ros-args'):] if '--ros-args' in argv else []
    try:
        args, names = parse_argv(argv[:len(argv) - len(ros_args)])
        specs = node_specs(args)
    except ValueError as e:
        from ccl_perception.cli import fail
        return fail('bringup', e)
    if names:
        unknown = set(names) - {s.name for s in specs}
        if unknown:
            print(f'bringup: error: unknown node(s) {sorted(unknown)}; available: '
                  f'{[s.name for s in specs]}', file=sys.stderr)
            return 2
        specs = [s for s in specs if s.name in names]

    def factory(context):
        import rclpy
        nodes = create_nodes(specs, context=context)
        log = rclpy.logging.get_logger('bringup')
        log.info(f'started {", ".join(nodes)}')
        if _truthy(resolve_arguments(args)['rviz']):
            rviz_config = os.path.join(config_dir(), 'ccl.rviz')
            log.warning(f'rviz is not started by bringup; run: rviz2 -d {rviz_config}')
        return nodes

    # launch arguments are ours, not ROS remaps: rclpy only sees what follows --ros-args
    return run_nodes(factory, ['bringup'] + ros_args, 'bringup')


if __name__ == '__main__':
    raise SystemExit(main())
