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
One source of truth for defaults.

* every config/<node>.yaml holds exactly the parameters its node declares, with the same
  values and types as the node's ``PARAMS`` table (which itself reads the dataclass
  defaults: ``SimWorldConfig``, ``MotionConfig``, ``MoveItExecutorConfig``,
  ``grasp_pipeline.DEFAULTS``); the planner's ``tau`` is deliberately absent;
* the softmax temperature is written once (``correspondence.DEFAULT_TAU``): no other
  module gives ``tau`` a numeric default, and the training default config agrees;
* the training tau stored in a checkpoint becomes the planner's ``tau`` for that model
  (test_train.py checks that the trainer's checkpoints carry it).
"""
import ast
import dataclasses
import glob
import os

import pytest
import yaml

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def yaml_params(name, node):
    with open(os.path.join(ROOT, 'config', name)) as f:
        return yaml.safe_load(f)[node]['ros__parameters']


def node_tables():
    from ccl_perception.nodes import descriptor_node, grasp_executor_node, grasp_planner_node
    from ccl_perception.nodes import sim_world_node, target_maker_node
    planner = {**grasp_planner_node.PARAMS, **grasp_planner_node.PIPELINE_PARAMS}
    planner.pop('tau')
    return {
        ('descriptor_node.yaml', 'descriptor_node'): descriptor_node.PARAMS,
        ('grasp_planner.yaml', 'grasp_planner'): planner,
        ('grasp_executor.yaml', 'grasp_executor'): grasp_executor_node.PARAMS,
        ('sim_world.yaml', 'sim_world'): sim_world_node.PARAMS,
        ('target_maker.yaml', 'target_maker'): target_maker_node.PARAMS,
    }


def test_every_yaml_equals_its_node_table():
    pytest.importorskip('rclpy')
    tables = node_tables()
    # demo.yaml configures `make demo` (its defaults live there alone), not a node
    files = ({os.path.basename(p) for p in glob.glob(os.path.join(ROOT, 'config', '*.yaml'))}
             - {'demo.yaml'})
    assert files == {f for f, _ in tables}, 'a config file without a node table, or vice versa'
    for (fname, node), table in tables.items():
        params = yaml_params(fname, node)
        assert set(params) == set(table), (fname, set(params) ^ set(table))
        for k, v in table.items():
            assert params[k] == v and type(params[k]) is type(v), (fname, k, params[k], v)


def test_node_tables_read_the_dataclass_defaults():
    pytest.importorskip('rclpy')
    from ccl_perception import grasp_pipeline
    from ccl_perception.executors.base import MotionConfig
    from ccl_perception.executors.moveit_executor import MoveItExecutorConfig
    from ccl_perception.executors.sim_executor import SimExecutorConfig
    from ccl_perception.nodes import grasp_executor_node, grasp_planner_node, sim_world_node
    from ccl_perception.sim.robot import SimWorldConfig
    world = SimWorldConfig()
    for k in ('n_objects', 'background_seed'):
        assert sim_world_node.PARAMS[k] == getattr(world, k)
    # width / height 0 = the benchmark's camera, which is sim.grasp_scene's (v2) or
    # SimWorldConfig's (v1)
    from ccl_perception.sim.grasp_scene import V2_WORLD, world_config
    assert (sim_world_node.PARAMS['width'], sim_world_node.PARAMS['height']) == (0, 0)
    v1 = world_config('v1')
    assert (v1.width, v1.height) == (world.width, world.height)
    assert ((world_config('v2').width, world_config('v2').height)
            == (V2_WORLD['width'], V2_WORLD['height']))
    motion = dataclasses.asdict(MotionConfig())
    for cfg in (SimExecutorConfig(), MoveItExecutorConfig()):  # both inherit, none repeats
        assert {k: getattr(cfg, k) for k in motion} == motion
    for k, v in dataclasses.asdict(MoveItExecutorConfig()).items():
        assert grasp_executor_node.PARAMS[k] == v
    assert grasp_planner_node.PIPELINE_PARAMS == grasp_pipeline.DEFAULTS


def _numeric_tau_defaults(path):
    """(line, text) of every place a file gives ``tau`` a literal number."""
    tree = ast.parse(open(path).read())
    out = []
    for node in ast.walk(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            args = node.args.args + node.args.kwonlyargs
            defaults = [None] * (len(node.args.args) -
                                 len(node.args.defaults)) + node.args.defaults
            defaults += node.args.kw_defaults
            for a, d in zip(args, defaults):
                if a.arg == 'tau' and isinstance(d, ast.Constant) and isinstance(d.value, float):
                    out.append((node.lineno, f'def {node.name}(tau={d.value})'))
        elif isinstance(node, ast.Dict):
            for k, v in zip(node.keys, node.values):
                if isinstance(k, ast.Constant) and k.value == 'tau' and isinstance(
                        v, ast.Constant):
                    out.append((node.lineno, f"'tau': {v.value}"))
        elif isinstance(node, ast.keyword) and node.arg == 'tau':
            if isinstance(node.value, ast.Constant):
                out.append((node.value.lineno, f'tau={node.value.value}'))
        elif isinstance(node, ast.Call) and node.args and isinstance(node.args[0], ast.Constant) \
                and node.args[0].value == '--tau':  # argparse option
            for kw in node.keywords:
                if kw.arg == 'default' and isinstance(kw.value, ast.Constant) \
                        and kw.value.value is not None:
                    out.append((node.lineno, f'--tau default={kw.value.value}'))
    return out


def test_tau_is_written_once():
    from ccl_perception.correspondence import DEFAULT_TAU
    files = glob.glob(os.path.join(ROOT, 'ccl_perception', '**', '*.py'), recursive=True)
    files += glob.glob(os.path.join(ROOT, 'training', '*.py'))
    found = {os.path.relpath(f, ROOT): _numeric_tau_defaults(f) for f in files}
    assert {f: v for f, v in found.items() if v} == {}
    with open(os.path.join(ROOT, 'training', 'configs', 'default.yaml')) as f:
        assert yaml.safe_load(f)['loss']['tau'] == DEFAULT_TAU


def test_checkpoint_tau_is_the_planners_default(tmp_path):
    rclpy = pytest.importorskip('rclpy')
    torch = pytest.importorskip('torch')
    from rclpy.parameter import Parameter

    from ccl_perception.checkpoint import load_checkpoint, save_checkpoint, training_tau
    from ccl_perception.correspondence import DEFAULT_TAU
    from ccl_perception.model import DescriptorNet
    from ccl_perception.nodes.grasp_planner_node import GraspPlanner
    torch.manual_seed(0)
    model = DescriptorNet('resnet18', 8, pretrained=False)
    trained = save_checkpoint(str(tmp_path / 'trained.pt'), model,
                              extra={'config': {'loss': {'tau': 0.05}}})
    plain = save_checkpoint(str(tmp_path / 'plain.pt'), model)
    assert training_tau(load_checkpoint(trained)) == 0.05
    assert training_tau(load_checkpoint(plain)) is None
    ctx = rclpy.context.Context()
    rclpy.init(context=ctx)
    nodes = []
    try:
        for ck, override, expect in ((trained, None, 0.05), (plain, None, DEFAULT_TAU),
                                     (trained, 0.02, 0.02)):
            params = [Parameter('checkpoint', value=ck)]
            if override is not None:
                params.append(Parameter('tau', value=override))
            node = GraspPlanner(context=ctx, parameter_overrides=params)
            nodes.append(node)
            assert node.get_parameter('tau').value == expect
            assert node.pipeline.matcher.tau == expect
        # a run-time change goes through GraspPipeline.update_config
        node = nodes[0]
        assert node.set_parameters([Parameter('tau', value=0.1)])[0].successful
        assert node.pipeline.matcher.tau == 0.1 and node.pipeline.config['tau'] == 0.1
        assert not node.set_parameters([Parameter('tau', value=-1.0)])[0].successful
        assert node.pipeline.matcher.tau == 0.1  # rejected: unchanged
    finally:
        for n in nodes:
            n.destroy_node()
        rclpy.shutdown(context=ctx)
