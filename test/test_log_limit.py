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


"""LogLimiter: a repeating message is logged on change, else once per interval (issue 20)."""
from ccl_perception.log_limit import kind, LogLimiter
import pytest


def test_kind_blanks_numbers():
    assert kind('similarity 0.713 < 0.800: target not in view') \
        == kind('similarity 0.69 < 0.8: target not in view') \
        == 'similarity # < #: target not in view'
    assert kind('at (-0.012, 3e-05, 1.2) m') == 'at (#, #, #) m'


def test_same_kind_is_throttled_and_counted():
    log = LogLimiter(5.0)
    assert log(0.0, 'similarity 0.71 < 0.8') == 'similarity 0.71 < 0.8'
    assert [log(0.1 * i, f'similarity 0.{60 + i} < 0.8') for i in range(1, 40)] == [None] * 39
    assert log(5.0, 'similarity 0.70 < 0.8') == \
        'similarity 0.70 < 0.8 (+39 not logged since the last message)'


def test_a_new_kind_is_logged_at_once():
    log = LogLimiter(5.0)
    assert log(0.0, 'no target set') == 'no target set'
    assert log(0.1, 'no target set') is None
    assert log(0.2, 'mug: depth refinement: no object') == \
        'mug: depth refinement: no object (+1 not logged since the last message)'
    assert log(0.3, 'no target set') == 'no target set'


def test_both_severities_through_limiters_on_a_real_ros_logger():
    """
    Log warnings and infos alternately through two limiters on one real ROS logger.

    rclpy refuses a second severity from one call site (ValueError "Logger severity cannot be
    changed between calls"): a planner logs abstentions (warning) and poses (info) through
    LogLimiter, so they must log from different lines.
    """
    pytest.importorskip('rclpy')
    from rclpy.impl.rcutils_logger import RcutilsLogger
    logger = RcutilsLogger('log_limit_test')
    abstain, pose = LogLimiter(0.0), LogLimiter(0.0)  # interval 0: every line is logged
    for _ in range(2):
        abstain.warning(logger, 'no grasp: no target set')
        pose.info(logger, 'grasp pose: mug confidence 0.1')
