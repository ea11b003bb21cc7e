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
Input helpers of the camera nodes: the newest-frame mailbox, synchronised RGB-D, silence alarm.

Only the newest frame is ever processed (:class:`LatestFrame`), colour and depth are paired
by stamp (:func:`subscribe_rgbd`), and a node that receives nothing says so
(:func:`watch_input`).
"""

import threading

from ccl_perception.nodes.names import COLOR_TOPIC, DEPTH_TOPIC
from ccl_perception.nodes.qos import SENSOR_QOS
from ccl_perception.nodes.runner import shutdown_tolerant


class LatestFrame:
    """
    A one-slot mailbox: subscription callbacks ``put``, the worker ``take``s the newest.

    Frames that are overwritten before being taken are counted in ``skipped``; the
    worker never sees a backlog.
    """

    def __init__(self):
        self._lock = threading.Lock()
        self._item = None
        self.received = 0
        self.skipped = 0

    def put(self, item) -> None:
        with self._lock:
            if self._item is not None:
                self.skipped += 1
            self._item = item
            self.received += 1

    def take(self):
        with self._lock:
            item, self._item = self._item, None
            return item

    def peek(self):
        """Return the newest item without taking it (``None`` if empty)."""
        with self._lock:
            return self._item


def subscribe_rgbd(node, callback, slop: float, queue_size: int, callback_group=None,
                   received: list = None):
    """
    Subscribe to colour + aligned depth, time-synchronised, calling ``callback(color, depth)``.

    Uses ``message_filters.ApproximateTimeSynchronizer`` when it is installed, else
    :class:`ccl_perception.sync.ApproximateSynchronizer`. Returns the objects to keep alive.

    Args:
        node: the node that owns the subscriptions.
        callback: called as ``callback(color, depth)`` with each synchronised pair of Images.
        slop: maximum stamp difference within a pair, seconds.
        queue_size: messages kept per topic while waiting for a partner.
        callback_group: the subscriptions' callback group (``None``: the node's default).
        received: optional ``{'colour': 0, 'depth': 0, ...}``: counts of the colour and depth
            messages that arrived (before synchronisation), for the "no frame" diagnostic.
    """
    from sensor_msgs.msg import Image
    try:
        import message_filters
    except ImportError:
        message_filters = None

    def count(i):
        if received is not None:
            received[('colour', 'depth')[i]] += 1
    if message_filters is not None:
        subs = [message_filters.Subscriber(node, Image, t, qos_profile=SENSOR_QOS,
                                           callback_group=callback_group)
                for t in (COLOR_TOPIC, DEPTH_TOPIC)]
        for i, sub in enumerate(subs):
            sub.registerCallback(lambda m, i=i: count(i))
        sync = message_filters.ApproximateTimeSynchronizer(subs, queue_size, slop)
        sync.registerCallback(callback)
        return subs + [sync]
    from ccl_perception.sync import ApproximateSynchronizer
    sync = ApproximateSynchronizer(2, slop, queue_size, callback)

    def add(i, m):
        count(i)
        sync.add(i, m)
    subs = [node.create_subscription(Image, t, lambda m, i=i: add(i, m), SENSOR_QOS,
                                     callback_group=callback_group)
            for i, t in enumerate((COLOR_TOPIC, DEPTH_TOPIC))]
    return subs + [sync]


def watch_input(node, period_s: float, counts, status_pub, prefix: str):
    """
    Say so when the input a node needs stopped for ``period_s`` seconds (a timer; returns it).

    A frame larger than the DDS transport delivers (e.g. 1280x720 rgb8 over UDP without
    shared memory), a wrong topic name or namespace and a stopped camera all look the
    same from inside a node: silence. ``counts()`` gives ``{what: messages received so
    far}``, the first entry being what the node needs (e.g. synchronised colour+depth
    pairs); :class:`ccl_perception.input_watch.InputWatch` words the reason from what did
    arrive. The warning is logged, published on ``status_pub`` after ``prefix`` and counted
    in ``node.counts['input_timeouts']``.
    """
    import time

    from ccl_perception.input_watch import InputWatch
    from std_msgs.msg import String
    watch = InputWatch(period_s)

    def tick():
        text = watch.tick(time.monotonic(), dict(counts()))
        if text is not None:
            node.counts['input_timeouts'] = node.counts.get('input_timeouts', 0) + 1
            node.get_logger().warning(text)
            status_pub.publish(String(data=prefix + text))
    return node.create_timer(float(period_s) / 2, shutdown_tolerant(node, tick))
