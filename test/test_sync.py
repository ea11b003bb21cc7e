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

"""Approximate time synchroniser: matching, slop, newest-first, no stale output, queue bound."""
import threading
from types import SimpleNamespace

from ccl_perception.sync import ApproximateSynchronizer, stamp_to_sec
import pytest


def msg(t, tag=''):
    sec = int(t)
    stamp = SimpleNamespace(sec=sec, nanosec=int(round((t - sec) * 1e9)))
    return SimpleNamespace(header=SimpleNamespace(stamp=stamp), tag=tag)


def test_stamp_to_sec():
    assert stamp_to_sec(msg(3.25).header.stamp) == pytest.approx(3.25)


def test_exact_and_within_slop():
    out = []
    s = ApproximateSynchronizer(
        3, slop=0.01, callback=lambda *m: out.append(tuple(x.tag for x in m)))
    s.add(0, msg(1.0, 'c1'))
    s.add(1, msg(1.005, 'd1'))
    assert out == []
    s.add(2, msg(0.995, 'i1'))  # spread 0.01 <= slop
    assert out == [('c1', 'd1', 'i1')]


def test_outside_slop_never_matches():
    s = ApproximateSynchronizer(2, slop=0.01)
    assert s.add(0, msg(1.0)) is None
    assert s.add(1, msg(1.02)) is None
    assert s.emitted == 0


def test_newest_set_wins_and_older_are_dropped():
    s = ApproximateSynchronizer(2, slop=0.005)
    for t in (1.0, 1.033, 1.066):
        s.add(0, msg(t, f'c{t}'))
    # depth arrives late, in a burst: the newest matching pair must win
    assert s.add(1, msg(1.0, 'd1.0'))[0].tag == 'c1.0'
    got = s.add(1, msg(1.066, 'd1.066'))
    assert [m.tag for m in got] == ['c1.066', 'd1.066']
    # the skipped colour frame 1.033 is gone: a late depth 1.033 cannot produce an older set
    assert s.add(1, msg(1.033, 'd1.033')) is None
    assert s.emitted == 2


def test_queue_is_bounded():
    s = ApproximateSynchronizer(2, slop=0.001, queue_size=3)
    for i in range(10):
        s.add(0, msg(float(i)))
    assert len(s._queues[0]) == 3 and s.dropped == 7
    assert s.add(1, msg(9.0)) is not None
    assert s.add(1, msg(2.0)) is None  # 2.0 was dropped from the colour queue


def test_explicit_stamp_and_bad_args():
    s = ApproximateSynchronizer(2, slop=0.0)
    s.add(0, object(), stamp=5.0)
    assert s.add(1, object(), stamp=5.0) is not None
    with pytest.raises(ValueError, match='out of range'):
        s.add(2, object(), stamp=1.0)
    with pytest.raises(ValueError, match='slop'):
        ApproximateSynchronizer(2, slop=-1)


def test_threads():
    got = []
    s = ApproximateSynchronizer(
        2,
        slop=0.0001,
        queue_size=200,
        callback=lambda a,
        b: got.append(
            a.tag))

    def feed(idx):
        for i in range(100):
            s.add(idx, msg(i * 0.01, str(i)))

    ts = [threading.Thread(target=feed, args=(k,)) for k in (0, 1)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    assert got and got == sorted(got, key=int)  # strictly in time order, never stale
    assert got[-1] == '99'


def test_latest_frame_mailbox_keeps_only_newest():
    pytest.importorskip('rclpy')
    from ccl_perception.nodes import LatestFrame
    box = LatestFrame()
    assert box.take() is None
    for i in range(3):
        box.put(i)
    assert box.take() == 2 and box.take() is None
    assert (box.received, box.skipped) == (3, 2)
