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


"""InputWatch: reports missing input only when it is missing, in words that fit (issue 20)."""
from ccl_perception.input_watch import InputWatch

PAIR = 'synchronised colour+depth pair'


def counts(pairs, colour, depth):
    return {PAIR: pairs, 'colour': colour, 'depth': depth}


def test_nothing_ever_arrives_names_the_topics_once_per_period():
    w = InputWatch(1.0)
    assert w.tick(0.0, counts(0, 0, 0)) is None     # armed
    assert w.tick(0.5, counts(0, 0, 0)) is None     # not a full period yet
    text = w.tick(1.0, counts(0, 0, 0))
    assert text.startswith(f'no {PAIR} in the last 1 s (received so far: {PAIR} 0, colour 0, '
                           'depth 0); check the topic names / camera_ns')
    assert w.tick(1.5, counts(0, 0, 0)) is None     # at most once per period
    assert 'check the topic names' in w.tick(2.0, counts(0, 0, 0))


def test_a_slow_start_is_not_missing_input():
    """The first tick may come long after the node was made (a model loading): it only arms."""
    w = InputWatch(5.0)
    assert w.tick(100.0, counts(0, 0, 0)) is None
    assert w.tick(104.9, counts(0, 0, 0)) is None
    assert w.tick(105.2, counts(1, 1, 1)) is None   # the first frame: no report


def test_frames_that_arrive_are_never_reported():
    w = InputWatch(0.5)
    assert all(w.tick(0.25 * i, counts(i, i, i)) is None for i in range(40))


def test_a_pause_after_frames_is_a_stop_not_a_topic_name_problem():
    w = InputWatch(1.0)
    for i in range(5):
        assert w.tick(0.5 * i, counts(i, i, i)) is None
    assert w.tick(2.75, counts(4, 4, 4)) is None    # 0.75 s since the last pair at 2.0
    text = w.tick(3.0, counts(4, 4, 4))
    assert 'the input stopped' in text and 'check the topic names' not in text
    assert w.tick(4.0, counts(5, 5, 5)) is None     # frames again


def test_an_input_that_never_arrives_is_named():
    w = InputWatch(1.0)
    assert w.tick(0.0, counts(0, 0, 0)) is None
    text = w.tick(1.0, counts(0, 30, 0))
    assert text.endswith('; colour arrive(s) but never depth: check that topic (a RealSense '
                         'needs align_depth.enable:=true for the aligned depth)')


def test_colour_and_depth_that_do_not_pair_are_named():
    w = InputWatch(1.0)
    assert w.tick(0.0, counts(0, 0, 0)) is None
    text = w.tick(1.0, counts(0, 30, 29))
    assert 'colour, depth arrive(s) but make no' in text and 'sync_slop' in text
    assert 'never' not in text
    assert 'check the topic names' not in text
