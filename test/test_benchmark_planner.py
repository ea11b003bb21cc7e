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

"""``benchmark.py --planner``: its synthetic frame runs every stage to a pose (not a timing)."""
import pytest


def test_the_planner_benchmark_frame_gives_a_pose_at_every_stage(tmp_path):
    torch = pytest.importorskip('torch')
    from ccl_perception.checkpoint import save_checkpoint
    from ccl_perception.model import DescriptorNet
    from training.benchmark import bench_frame_to_pose
    torch.manual_seed(0)
    ck = save_checkpoint(str(tmp_path / 'm.pt'), DescriptorNet('resnet18', 16, pretrained=False))
    # the planner's default gates (per-target gates, min_confidence) must not stop it: an
    # abstaining frame raises instead of timing a shortcut
    rows = bench_frame_to_pose(ck, downscales=(4,), backends=('torch',), warmup=0, reps=1)
    assert [(r['downscale'], r['backend']) for r in rows] == [(4, 'torch')]
    row = rows[0]
    assert row['total_ms'] > 0 and row['refine_ms'] > 0
    assert row['geometry_ms'] >= row['refine_ms']


def test_tables_name_the_model():
    from training.benchmark import model_label
    assert model_label() == 'shipped model (efficientnet_lite0, fpn trunk)'
