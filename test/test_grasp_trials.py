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

"""Grasp trials: scoring of hand-made outcomes, threshold choice, a repeatable benchmark."""
import json
from pathlib import Path
import sys

from ccl_perception.evaluation.grasp_trials import classify, summarise
import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / 'training'))
import choose_thresholds  # noqa: E402,I100


def trial(present, outcome, confidence=1.0, similarity=1.0):
    return {'present': present, 'outcome': outcome, 'confidence': confidence,
            'similarity': similarity}


def test_summary_of_hand_made_outcomes():
    trials = [trial(True, classify(True, True, True)), trial(True, classify(True, True, False)),
              trial(True, classify(True, False, False)),
              trial(False, classify(False, True, False)),
              trial(False, classify(False, False, False))]
    assert [t['outcome'] for t in trials] == ['grasped', 'failed_grasp', 'abstained',
                                              'false_grasp', 'correct_abstention']
    s = summarise(trials)
    assert (s['grasped'], s['failed_grasps'], s['abstained'], s['present_scenes']) == (1, 1, 1, 3)
    assert (s['false_grasps'], s['absent_scenes'], s['correct_abstentions']) == (1, 2, 1)
    assert (s['success_rate'] == pytest.approx(1 / 3)
            and s['false_grasp_rate'] == pytest.approx(0.5))
    assert s['success_rate_when_attempted'] == pytest.approx(0.5)


def test_thresholds_turn_low_scenes_into_abstentions():
    trials = [trial(True, 'grasped', 0.4, 0.9), trial(True, 'grasped', 0.1, 0.9),
              trial(True, 'failed_grasp', 0.05, 0.9), trial(True, 'abstained', 0.9, 0.9),
              trial(False, 'false_grasp', 0.2, 0.6), trial(False, 'correct_abstention', 0.0, 0.3)]
    r = choose_thresholds.score(trials, 0.0, 0.0)
    assert (r['grasped'], r['failed'], r['abstained'], r['false']) == (2, 1, 1, 1)
    # the false grasp (sim 0.6) and the 0.05 fail go
    r = choose_thresholds.score(trials, 0.1, 0.7)
    assert (r['grasped'], r['failed'], r['abstained'], r['false']) == (2, 0, 2, 0)
    (c, s), best = choose_thresholds.choose(trials)
    assert best['grasped'] == 2 and best['false'] == 0 and best['failed'] == 0
    assert c <= 0.1 and s > 0.6  # keeps the 0.1 grasp, removes the false one


def test_alpha_of_the_calibrated_gates_by_hand():
    # one target; s+ = 0.9, s- = 0.5 for both axis points: gate = 0.5 + 0.4 alpha
    stats = [[[0.9, 0.9]] * 4, [[0.5, 0.5]] * 4]
    report = {'targets': {'a': {'calibration': [stats]}},
              'trials': [trial(True, 'grasped'), trial(True, 'failed_grasp'),
                         trial(False, 'false_grasp'), trial(False, 'correct_abstention')]}
    # the smaller of the two points' peaks decides (both points have the same gate here)
    for t, peaks in zip(report['trials'], ([0.8, 0.73], [0.55, 0.9], [0.62, 0.95], [0.3, 0.3])):
        t['target'], t['similarities'] = 'a', peaks
    np.testing.assert_allclose(choose_thresholds.target_gate(report, 'a', 0.5), [0.7, 0.7])
    r = choose_thresholds.score_alpha([report], 0.25)           # gate 0.6: the false grasp stays
    assert (r['grasped'], r['failed'], r['false']) == (1, 0, 1)
    alpha, conf, best = choose_thresholds.choose_alpha([report])
    # gates above 0.62 and at most 0.73: alpha in (0.3, 0.575] = 0.35 ... 0.55 on the grid, with
    # any confidence gate (all confidences are 1): the highest one, the middle alpha
    assert alpha == pytest.approx(0.45) and conf == choose_thresholds.CONFIDENCES[-1]
    assert (best['grasped'], best['failed'], best['false']) == (1, 0, 0)


def test_choose_refuses_runs_with_closed_gates(tmp_path, capsys):
    path = tmp_path / 'results.json'
    path.write_text(json.dumps({'planner': {'min_confidence': 0.3}, 'trials': []}))
    assert choose_thresholds.main([str(path)]) == 2
    assert 'min_confidence=0' in capsys.readouterr().err
    path.write_text(json.dumps({'planner': {'min_confidence': 0, 'min_similarity': 0},
                                'trials': []}))
    assert choose_thresholds.main([str(path)]) == 2          # per-target gates still on
    assert 'per_target_gates=false' in capsys.readouterr().err


@pytest.mark.timeout(900)
def test_the_benchmark_is_repeatable(tmp_path):
    """Same seed, same outcomes: every scene is restored from the world's snapshot."""
    pytest.importorskip('pybullet')
    torch = pytest.importorskip('torch')
    from ccl_perception.checkpoint import save_checkpoint
    from ccl_perception.evaluation.grasp_trials import run_grasp_benchmark
    from ccl_perception.model import build_model
    torch.manual_seed(0)
    torch.set_num_threads(1)
    ck = save_checkpoint(str(tmp_path / 'tiny.pt'), build_model(
        {'backbone': 'resnet18', 'descriptor_dim': 8, 'pretrained': False, 'head_hidden': 8}))
    wide_open = {'min_similarity': -1.0, 'min_confidence': 0.0, 'ransac_threshold': 1.0,
                 'axis_length_tolerance': 1e6, 'max_width': 0.5, 'per_target_gates': False}
    runs = [run_grasp_benchmark(ck, grasps=1, absent=1, n_targets=1,
                                out_dir=str(tmp_path / f'r{i}'),
                                oracle=False, seed=9000, planner_config=wide_open)
            for i in range(2)]
    keys = ('seed', 'target', 'present', 'outcome', 'planner', 'confidence', 'surface',
            'arrangement')
    a, b = ([{k: t[k] for k in keys} for t in r['trials']] for r in runs)
    assert a == b and len(a) == 2


def test_grasp_table_rows_by_hand():
    import grasp_table  # training/, on the path above
    s = summarise([trial(True, 'grasped'), trial(True, 'abstained'),
                   trial(False, 'correct_abstention')])
    o = summarise([trial(True, 'grasped'), trial(True, 'grasped')])
    rows = (('a', 'visible', 1, True, True, 'one view'), ('b', 'placed', 1, False, True, 'old'))
    reports = {'a': {'results': {'model': s, grasp_table.ORACLE: o},
                     'per_tag': {'glossy': s}},
               'b': {'results': {'model': o, grasp_table.ORACLE: o}}}
    lines = grasp_table.table(reports, rows).splitlines()
    assert lines[2] == ('| visible & graspable, held-out tables (paper protocol) | one view | '
                        '1/2 | 50 % | 1 | 0 | 0/1 |')
    assert lines[3].endswith('| oracle keypoints (executor ceiling) | 2/2 | - | 0 | 0 | - |')
    assert lines[4].startswith('| placed anywhere') and '| 2/2 | 100 % |' in lines[4]
    assert grasp_table.tag_table(reports, rows).splitlines()[2] == \
        '| one view | glossy | 1/2 | 1 | 0 | 0/1 |'
