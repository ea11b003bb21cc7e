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

"""Allowed ranges of runtime values: the checker, the pipeline table and the documented ranges."""
import math
from pathlib import Path
import re

from ccl_perception import grasp_pipeline as gp
from ccl_perception.validation import check, choice, DEVICE, flag, integer, real, text
from param_cases import PIPELINE
import pytest

DOCS = Path(__file__).resolve().parents[1] / 'docs' / 'ros_interface.md'


class TestLimit:

    def test_real_open_closed_bounds(self):
        lim = real(0, 1, low_open=True)
        assert lim.describe() == '(0, 1]'
        assert lim.check('tau', 1) == 1.0 and isinstance(lim.check('tau', 1), float)
        for bad in (0, 0.0, -1, 1.0000001, math.nan, math.inf, -math.inf, '0.1', True, None):
            with pytest.raises(ValueError, match=r'^tau = .* is not allowed: '
                                                 r'must be a finite number in \(0, 1\]$'):
                lim.check('tau', bad)

    def test_half_bounded_and_unbounded(self):
        assert real(0, None, low_open=True).describe() == '> 0'
        assert real(None, 2).describe() == '<= 2'
        assert integer(0).describe() == 'integer >= 0'
        assert real().describe() == 'finite number'
        with pytest.raises(ValueError, match=r'^x = -1 is not allowed: must be an integer >= 0$'):
            integer(0).check('x', -1)
        with pytest.raises(ValueError, match=r'^x = inf is not allowed: must be a finite number$'):
            real().check('x', math.inf)

    def test_integer_odd(self):
        lim = integer(1, 51, odd=True)
        assert lim.describe() == 'odd integer in [1, 51]'
        assert lim.check('w', 7) == 7 and lim.check('w', 7.0) == 7
        for bad in (4, 7.5, 53, -3, True):
            with pytest.raises(ValueError, match=r'must be an odd integer in \[1, 51\]'):
                lim.check('w', bad)

    def test_choice_flag_text(self):
        assert choice('normal', 'camera').describe() == 'normal | camera'
        with pytest.raises(ValueError, match=r"^approach = 'up' is not allowed: "
                                             r"must be one of 'normal', 'camera'$"):
            choice('normal', 'camera').check('approach', 'up')
        assert flag().check('f', False) is False
        with pytest.raises(ValueError, match='must be true or false'):
            flag().check('f', 1)
        assert DEVICE.check('device', 'cuda:3') == 'cuda:3'
        for bad in ('tpu', 'cuda:', 'CPU', ''):
            with pytest.raises(ValueError,
                               match=r'must be a string \(cpu \| cuda \| cuda:<index>\)'):
                DEVICE.check('device', bad)
        assert text().check('s', '') == ''
        with pytest.raises(ValueError, match='must be a string'):
            text().check('s', 3)

    def test_check_passes_unknown_keys(self):
        assert check({'a': real(0, 1)}, {'a': 1, 'b': 'x'}) == {'a': 1.0, 'b': 'x'}


class TestPipelineLimits:

    def test_every_knob_has_a_limit_and_the_defaults_are_allowed(self):
        assert set(gp.LIMITS) == set(gp.DEFAULTS)
        assert gp.merge_config({}) == gp.DEFAULTS

    def test_every_knob_is_in_the_case_table(self):
        assert {name for name, _, _ in PIPELINE} == set(gp.DEFAULTS)

    @pytest.mark.parametrize('name,value,allowed', PIPELINE)
    def test_table(self, name, value, allowed):
        if allowed:
            assert gp.merge_config({name: value})[name] == value
        else:
            with pytest.raises(ValueError, match=re.escape(name)) as e:
                gp.merge_config({name: value})
            assert repr(value) in str(e.value) and '\n' not in str(e.value)

    def test_depth_range_order(self):
        with pytest.raises(ValueError, match=r'^min_depth = 1.0 must be below max_depth = 0.5$'):
            gp.merge_config({'min_depth': 1.0, 'max_depth': 0.5})


def doc_table(heading: str) -> dict:
    """Return ``{parameter: (default, allowed, set)}`` of the docs' table under ``heading``."""
    text = DOCS.read_text(encoding='utf-8')
    assert heading in text, f'{heading!r} missing from {DOCS.name}'
    rows = {}
    for line in text[text.index(heading):].splitlines()[1:]:
        if line.startswith('#'):
            break
        cells = [c.strip() for c in re.split(r'(?<!\\)\|', line.strip().strip('|'))]
        if len(cells) >= 4 and cells[0].startswith('`'):
            rows[cells[0].strip('`')] = tuple(c.replace('\\|', '|').strip('`') for c in cells[1:4])
    return rows


def _fmt_default(v) -> str:
    if isinstance(v, bool):
        return str(v).lower()
    return str(v) if v != '' else "''"


def _node_tables():
    pytest.importorskip('rclpy')
    from ccl_perception import node_limits as nl
    from ccl_perception.nodes import descriptor_node as dn, grasp_executor_node as en
    from ccl_perception.nodes import grasp_planner_node as pn, sim_world_node as sn
    from ccl_perception.nodes import target_maker_node as tn
    return [
        ('### Planner parameters', {**pn.PARAMS, **gp.DEFAULTS},
         {**nl.PLANNER_LIMITS, **gp.LIMITS}, nl.PLANNER_RUN_TIME),
        ('### Descriptor node parameters', dn.PARAMS, nl.DESCRIPTOR_LIMITS,
         nl.DESCRIPTOR_RUN_TIME),
        ('### Target maker parameters', tn.PARAMS, nl.TARGET_MAKER_LIMITS,
         nl.TARGET_MAKER_RUN_TIME),
        ('### Executor parameters', en.PARAMS, nl.EXECUTOR_LIMITS, nl.EXECUTOR_RUN_TIME),
        ('### Sim world parameters', sn.PARAMS, nl.SIM_WORLD_LIMITS, nl.SIM_WORLD_RUN_TIME),
    ]


def test_docs_state_every_parameter_with_its_range():
    """docs/ros_interface.md's tables == the code's defaults, limits and run-time sets."""
    for heading, defaults, limits, run_time in _node_tables():
        rows = doc_table(heading)
        assert set(rows) == set(defaults), heading
        for name, default in defaults.items():
            doc_default, allowed, when = rows[name]
            assert doc_default == _fmt_default(default), (heading, name)
            assert when == ('run time' if name in run_time else 'start-up'), (heading, name)
            if name in limits:
                assert allowed == limits[name].describe(), (heading, name)
