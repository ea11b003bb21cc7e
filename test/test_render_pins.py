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
Small renders of both benchmarks, pinned: the shared render loop changes no pixel, pose or pair.

The digests (``render_digest.tree_digest``: decoded pixels, depth, segmentation, JSON bytes)
were recorded with the two separate v1 / v2 renderers that ``sim/dataset.py`` had before they
became one loop over ``BenchmarkSpec`` (pybullet 3.2.7, numpy 2.4.6, TinyRenderer: no GPU or
Mesa involved). A new pybullet or numpy may legitimately move them; re-record only after
comparing a render of the previous code with the new one.
"""
from ccl_perception.sim import dataset, furniture
import pytest
from render_digest import tree_digest

SMALL = {'width': 160, 'height': 120, 'settle_steps': 60, 'depth': True}
CASES = {
    'v1_train': (dataset.render_training_set, {'num_images': 2, 'n_objects': 4},
                 '50472665fbcb58ea03a6335977f230e7aaaaba19ff52d9164a343b305b90c9c2'),
    'v1_eval': (dataset.render_evaluation_set,
                {'n_scenes': 2, 'views_per_scene': 2, 'n_seen_objects': 3, 'n_unseen_objects': 3,
                 'objects_per_scene': 4, 'keypoints_per_object': 6},
                'dbc6e75b6927258bb51b500ce3e565b020a4ecb12e8aa09f3fa64231ead14c35'),
    # TinyRenderer, a new training table photo and a 50 % hand distractor per frame
    'v2_train': (dataset.render_training_set,
                 {'benchmark': 'v2', 'num_images': 3, 'renderer': 'tiny', 'hand_probability': 0.5,
                  'vary_surface': True},
                 'da55fef74e480d454091f0f40abedd4189899d20a3f95cf32ef6121edc36478f'),
}


@pytest.mark.parametrize('case', sorted(CASES))
def test_small_render_is_unchanged(case, tmp_path):
    render, config, digest = CASES[case]
    if case.startswith('v2'):
        try:
            furniture.archive_path('Scopia')
        except furniture.FurnitureMissing as exc:
            pytest.skip(f'{furniture.APT_PACKAGE} is not installed: {exc}')
    render(str(tmp_path), {**SMALL, **config}, progress=False)
    assert tree_digest(str(tmp_path)) == digest


def test_benchmark_table():
    assert dataset.BENCHMARKS == ('v1', 'v2')
    for name, spec in dataset.SPECS.items():
        assert spec.name == name
        assert spec.train_defaults['benchmark'] == spec.eval_defaults['benchmark'] == name
    with pytest.raises(ValueError, match=r"benchmark must be one of \('v1', 'v2'\), got 'v3'"):
        dataset.render_training_set('/nonexistent', {'benchmark': 'v3'}, progress=False)
