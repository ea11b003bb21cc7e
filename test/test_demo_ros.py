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
The demo's ROS trial runner end to end, in one process over DDS (as ``make demo`` runs it).

sim world + composed sim executor + grasp planner from ``bringup.node_specs``, spun by one
single-threaded ``NodeRunner``. The model is a tiny random resnet18, so the planner's
checks are opened wide (``min_similarity`` -1 and no per-target gates, ``min_confidence`` 0,
a 1 m RANSAC threshold, any axis length): it then always produces a pose, which the runner
starts with
``~/execute`` and whose outcome it reads from ``~/result``. Whether the random pose
lifts the object does not matter here; that the whole loop runs and reports does.
"""
import pytest

rclpy = pytest.importorskip('rclpy')
torch = pytest.importorskip('torch')


def test_ros_trial_runner_plans_executes_and_reports(tmp_path):
    from rclpy.parameter import Parameter

    from ccl_perception.checkpoint import save_checkpoint
    from ccl_perception.evaluation.grasp_trials import MAX_OBJECT_WIDTH
    from ccl_perception.ros_trial_runner import RosTrialRunner
    from ccl_perception.sim.auto_targets import make_sim_targets
    from ccl_perception.inference import DescriptorExtractor
    from ccl_perception.model import DescriptorNet
    from ccl_perception.sim.robot import SimWorld, SimWorldConfig
    torch.manual_seed(0)
    torch.set_num_threads(1)
    ck = save_checkpoint(str(tmp_path / 'tiny.pt'),
                         DescriptorNet('resnet18', 16, pretrained=False))
    cfg = SimWorldConfig(width=80, height=60)
    world = SimWorld(cfg)
    try:
        paths = make_sim_targets(world, DescriptorExtractor(ck), str(tmp_path / 'targets'), 1,
                                 MAX_OBJECT_WIDTH)
    finally:
        world.close()
    assert len(paths) == 1
    name = next(iter(paths))
    runner = RosTrialRunner(ck, str(tmp_path / 'targets'), cfg)
    try:
        assert set(runner.nodes) == {'grasp_planner', 'sim_world', 'grasp_executor', 'ccl_demo'}
        wide_open = [Parameter('min_similarity', value=-1.0),
                     Parameter('per_target_gates', value=False),
                     Parameter('min_confidence', value=0.0),
                     Parameter('ransac_threshold', value=1.0),
                     Parameter('axis_length_tolerance', value=1e6),
                     Parameter('max_width', value=0.5)]
        assert all(r.successful for r in runner.nodes['grasp_planner'].set_parameters(wide_open))
        trial = runner.trial(name, True, 60.0, 1000)
        assert trial['planner'] == 'pose', trial
        assert trial['outcome'] in ('grasped', 'failed_grasp'), trial
        assert trial['grasp']['backend'] == 'sim' and trial['grasp']['stage'] in (
            'pre_grasp', 'report'), trial['grasp']
        assert runner.nodes['grasp_executor'].counts['executed'] >= 1
    finally:
        runner.close()
