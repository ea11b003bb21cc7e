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
Launch arguments that are not given leave config/*.yaml in charge (issue 21).

Every launch/bringup argument defaults to "not given"; a copy of each config YAML with every
value changed comes out of bringup's node table unchanged (``config_dir:=``), the model
settings (downscale, device, backend) included; a given argument still wins over the file.
The real planner started from a copy with ``downscale: 2`` runs its model at 2 (before
issue 21 it came out as 1: the launch default overrode the file).
"""
import os
import shutil

from ccl_perception import bringup, model_settings
import pytest
import yaml

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
NODE_FILES = ('descriptor_node.yaml', 'grasp_planner.yaml', 'target_maker.yaml',
              'sim_world.yaml', 'grasp_executor.yaml')
#: Parameters bringup derives from its arguments rather than passing the file's value.
DERIVED = {'sim_world': {'run_executor'}}


def changed(value):
    """Return a different value of the same type."""
    if isinstance(value, bool):
        return not value
    if isinstance(value, int):
        return value + 1
    if isinstance(value, float):
        return value + 0.25
    if isinstance(value, str):
        return value + '_changed' if value else 'changed'
    return list(value) + list(value[:1])


def copy_with_changes(tmp_path, overrides=None):
    """Copy config/ to tmp_path with every node parameter changed; returns {node: params}."""
    out = {}
    for fname in NODE_FILES:
        with open(os.path.join(ROOT, 'config', fname)) as f:
            data = yaml.safe_load(f)
        (node, section), = data.items()
        params = {k: changed(v) for k, v in section['ros__parameters'].items()}
        params.update((overrides or {}).get(node, {}))
        section['ros__parameters'] = params
        with open(tmp_path / fname, 'w') as f:
            yaml.safe_dump(data, f)
        out[node] = params
    shutil.copy(os.path.join(ROOT, 'config', 'ccl.rviz'), tmp_path / 'ccl.rviz')
    return out


#: Valid changed values of the settings the issue is about (and the executor's backend,
#: which bringup reads to decide which nodes to start).
MODEL_CHANGES = {'downscale': 2, 'device': 'cuda:1', 'backend': 'onnx'}
OVERRIDES = {'descriptor_node': MODEL_CHANGES, 'grasp_planner': MODEL_CHANGES,
             'target_maker': MODEL_CHANGES, 'grasp_executor': {'backend': 'moveit'}}


def test_every_launch_argument_defaults_to_not_given():
    assert {k: v[0] for k, v in bringup.LAUNCH_ARGUMENTS.items()} == {
        k: bringup.NOT_GIVEN for k in bringup.LAUNCH_ARGUMENTS}
    for spec in bringup.node_specs({}):
        assert spec.parameters == ({'run_executor': True} if spec.name == 'sim_world' else {})
    # the model defaults differ from the changed values the next test writes
    assert (model_settings.DEFAULT_DOWNSCALE, model_settings.DEFAULT_DEVICE,
            model_settings.DEFAULT_BACKEND) != tuple(MODEL_CHANGES.values())


def test_copied_yaml_values_pass_through_bringup(tmp_path):
    written = copy_with_changes(tmp_path, OVERRIDES)
    # the executor backend comes from the file (moveit): no sim world unless asked for
    specs = bringup.node_specs({'config_dir': str(tmp_path)})
    assert [s.name for s in specs] == ['descriptor_node', 'grasp_planner', 'target_maker',
                                       'grasp_executor']
    assert specs[-1].host is None
    specs = bringup.node_specs({'config_dir': str(tmp_path), 'sim': 'true'})
    assert {s.name for s in specs} == set(written)
    for s in specs:
        got = bringup.merged_parameters(s)
        derived = DERIVED.get(s.name, set())
        assert {k: v for k, v in got.items() if k not in derived} == {
            k: v for k, v in written[s.name].items() if k not in derived}, s.name
    world = next(s for s in specs if s.name == 'sim_world')
    assert bringup.merged_parameters(world)['run_executor'] is False  # the executor is moveit
    for name in ('descriptor_node', 'grasp_planner', 'target_maker'):
        params = bringup.merged_parameters(next(s for s in specs if s.name == name))
        assert {k: params[k] for k in MODEL_CHANGES} == MODEL_CHANGES


def test_given_arguments_win_over_the_file(tmp_path):
    copy_with_changes(tmp_path, OVERRIDES)
    specs = bringup.node_specs({'config_dir': str(tmp_path), 'downscale': '3', 'device': 'cpu',
                                'executor_backend': 'sim', 'sim': 'true', 'target': 'mug'})
    planner = bringup.merged_parameters(specs[1])
    assert (planner['downscale'], planner['device'], planner['backend'], planner['target']) \
        == (3, 'cpu', 'onnx', 'mug')
    assert specs[-1].host == 'sim_world'
    assert bringup.merged_parameters(specs[-1])['backend'] == 'sim'


@pytest.mark.parametrize('arguments, message', [
    ({'downscale': '0'}, 'downscale = 0 is not allowed'),
    ({'downscale': 'two'}, "downscale = 'two' is not allowed"),
    ({'backend': 'tensorrt'}, "backend = 'tensorrt' is not allowed"),
    ({'device': 'gpu'}, "device = 'gpu' is not allowed"),
    ({'config_dir': '/no/such/folder'}, 'is not a folder'),
])
def test_bad_given_arguments_are_refused(arguments, message):
    with pytest.raises(ValueError, match=message):
        bringup.node_specs(arguments)


def test_planner_from_a_copied_yaml_runs_at_its_downscale(tmp_path):
    """The issue's case: grasp_planner.yaml copied with downscale: 2 -> the node runs at 2."""
    rclpy = pytest.importorskip('rclpy')
    torch = pytest.importorskip('torch')
    from ccl_perception.checkpoint import save_checkpoint
    from ccl_perception.model import DescriptorNet
    torch.manual_seed(0)
    ck = save_checkpoint(str(tmp_path / 'tiny.pt'), DescriptorNet('resnet18', 8, pretrained=False))
    config = tmp_path / 'config'
    config.mkdir()
    for fname in NODE_FILES:
        shutil.copy(os.path.join(ROOT, 'config', fname), config / fname)
    path = config / 'grasp_planner.yaml'
    data = yaml.safe_load(path.read_text())
    data['grasp_planner']['ros__parameters'].update(downscale=2, checkpoint=ck)
    path.write_text(yaml.safe_dump(data))
    specs = [s for s in bringup.node_specs({'config_dir': str(config)})
             if s.name == 'grasp_planner']
    ctx = rclpy.context.Context()
    rclpy.init(context=ctx)
    nodes = {}
    try:
        nodes = bringup.create_nodes(specs, context=ctx)
        planner = nodes['grasp_planner']
        assert planner.get_parameter('downscale').value == 2
        assert planner.pipeline.extractor.downscale == 2
    finally:
        for n in nodes.values():
            n.destroy_node()
        rclpy.shutdown(context=ctx)
