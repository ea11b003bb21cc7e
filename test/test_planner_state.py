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

"""TargetLibrary resolution and PlannerState's all-or-nothing parameter changes (no ROS)."""
from ccl_perception import grasp_pipeline
from ccl_perception.planner_state import PlannerState
from ccl_perception.targets import save_target, Target, TargetError, TargetLibrary
import numpy as np
import pytest


def target(name, identity='m1'):
    return Target(name=name, descriptors=np.eye(2, 4, dtype=np.float32),
                  pixels=np.array([[1.0, 2.0], [3.0, 4.0]]), model_identity=identity,
                  image_size=(8, 8))


@pytest.fixture
def lib_dir(tmp_path):
    for n in ('mug', 'bottle'):
        save_target(str(tmp_path / 'lib' / f'{n}.npz'), target(n))
    save_target(str(tmp_path / 'lib' / 'alien.npz'), target('alien', 'm2'))
    (tmp_path / 'other').mkdir()
    save_target(str(tmp_path / 'other' / 'cup.npz'), target('cup'))
    return tmp_path


class FakeExtractor:
    """What GraspPipeline needs of a DescriptorExtractor to be built (no frame is run)."""

    stride = 8


def test_library_resolves_names_paths_and_new_files(lib_dir):
    lib = TargetLibrary(str(lib_dir / 'lib'), 'm1')
    errors = lib.reload()
    assert lib.names == ['bottle', 'mug'] and 'made with model m2' in errors['alien.npz']
    assert lib.resolve('') is None
    assert lib.resolve('mug').name == 'mug'
    assert lib.resolve(str(lib_dir / 'other' / 'cup.npz')).name == 'cup'
    save_target(str(lib_dir / 'lib' / 'jar.npz'), target('jar'))  # saved after the reload
    assert lib.resolve('jar').name == 'jar'
    with pytest.raises(TargetError,
                       match=r"unknown target 'cupp' \(library .* has: bottle, mug\)"):
        lib.resolve('cupp')
    with pytest.raises(TargetError, match='made with model m2'):
        lib.resolve('alien.npz')
    with pytest.raises(TargetError, match='does not exist'):
        TargetLibrary.open(str(lib_dir / 'nowhere'))
    with pytest.raises(TargetError, match='plain file name'):
        lib.path_for('../x')
    assert lib.save(target('box')).endswith('lib/box.npz') and 'box' in lib.targets


def test_state_applies_all_changes_or_none(lib_dir):
    lib = TargetLibrary(str(lib_dir / 'lib'), 'm1')
    lib.reload()
    st = PlannerState(FakeExtractor(), {}, lib)
    assert st.pipeline.config is st.config          # one config
    assert 'mug' in st.apply({'target': 'mug'}) and st.target.name == 'mug'
    # a bad target in the same call as a valid knob: nothing changes
    with pytest.raises(TargetError):
        st.apply({'min_confidence': 0.9, 'target': 'nope'})
    assert st.target.name == 'mug'
    assert st.config['min_confidence'] == grasp_pipeline.DEFAULTS['min_confidence']
    assert st.pipeline.config is st.config
    # a bad knob value leaves library and target alone
    with pytest.raises(ValueError, match='tau'):
        st.apply({'tau': -1.0, 'target_dir': str(lib_dir / 'other'), 'target': 'cup'})
    assert st.target.name == 'mug' and st.library is lib and st.config['tau'] > 0
    # new directory + target from it + knob: all committed, to the pipeline too
    note = st.apply({'tau': 0.05, 'target_dir': str(lib_dir / 'other'), 'target': 'cup'})
    assert st.target.name == 'cup' and st.library.names == ['cup'] and st.config['tau'] == 0.05
    assert st.pipeline.config is st.config and st.pipeline.matcher.tau == 0.05
    assert 'tau=0.05' in note
    # other node parameters (publish_heatmap, ...) are not the state's business
    assert st.apply({'publish_heatmap': False}) == ''


def test_a_change_is_validated_once(lib_dir, monkeypatch):
    lib = TargetLibrary(str(lib_dir / 'lib'), 'm1')
    st = PlannerState(FakeExtractor(), {}, lib)
    calls = []
    real = grasp_pipeline.validate_config
    monkeypatch.setattr(grasp_pipeline, 'validate_config',
                        lambda cfg: calls.append(dict(cfg)) or real(cfg))
    st.apply({'min_similarity': 0.5})
    assert len(calls) == 1 and st.pipeline.config['min_similarity'] == 0.5
    with pytest.raises(TypeError, match='read-only'):
        st.config['min_similarity'] = 0.1           # the validated config cannot drift
    with pytest.raises(TypeError, match='PipelineConfig'):
        st.pipeline.use({**st.config})              # an unchecked dict is refused
    import copy
    import pickle
    for clone in (copy.deepcopy(st.config), pickle.loads(pickle.dumps(st.config))):
        assert clone == st.config and type(clone) is grasp_pipeline.PipelineConfig


def test_state_without_model_refuses_targets(lib_dir):
    st = PlannerState(None, {}, TargetLibrary(str(lib_dir / 'lib')), 'model not loaded: x')
    with pytest.raises(TargetError, match='model not loaded'):
        st.apply({'target': 'mug'})
    st.apply({'target': ''})
    assert st.target is None
