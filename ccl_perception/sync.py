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
Approximate time synchroniser for N message streams (pure Python, no ROS).

Used by the nodes when ``message_filters`` is not installed (it is not on the Python
package registry). Semantics follow ``message_filters.ApproximateTimeSynchronizer``:
a set is emitted when every input has a message whose stamp lies within ``slop``
seconds of all the others; each input keeps at most ``queue_size`` messages (oldest
dropped). Differences, on purpose, for a perception pipeline that must never lag:

* among the candidate sets the NEWEST is chosen (not the first found), and
* after a set is emitted every message at or before it is discarded, so an old frame
  is never emitted after a newer one.

Thread-safe: ``add`` may be called from several executor threads.
"""

import itertools
import threading
from typing import Callable, List, Optional, Sequence


def stamp_to_sec(stamp) -> float:
    """``builtin_interfaces/Time`` (or anything with ``sec``/``nanosec``) -> float seconds."""
    return float(stamp.sec) + 1e-9 * float(stamp.nanosec)


class ApproximateSynchronizer:
    """
    Match messages of ``n_inputs`` streams by timestamp.

    Args:
        n_inputs: number of streams (>= 1).
        slop: maximum spread of stamps in a set, seconds.
        queue_size: messages kept per stream.
        callback: called as ``callback(*msgs)`` (one per stream, in input order) for
            each synchronised set, outside the internal lock.
    """

    def __init__(self, n_inputs: int, slop: float, queue_size: int = 10,
                 callback: Optional[Callable] = None):
        if n_inputs < 1:
            raise ValueError(f'n_inputs must be >= 1, got {n_inputs}')
        if slop < 0:
            raise ValueError(f'slop must be >= 0 seconds, got {slop}')
        if queue_size < 1:
            raise ValueError(f'queue_size must be >= 1, got {queue_size}')
        self.slop = float(slop)
        self.queue_size = int(queue_size)
        self._queues: List[List] = [[] for _ in range(n_inputs)]  # sorted lists of (t, msg)
        self._callbacks = [callback] if callback is not None else []
        self._lock = threading.Lock()
        self.emitted = 0
        self.dropped = 0

    def register_callback(self, callback: Callable) -> None:
        """Add a callback (``message_filters`` style)."""
        self._callbacks.append(callback)

    def add(self, index: int, msg, stamp: Optional[float] = None):
        """
        Add ``msg`` to stream ``index``; returns the emitted tuple or ``None``.

        ``stamp`` in seconds defaults to ``msg.header.stamp``.
        """
        if not 0 <= index < len(self._queues):
            raise ValueError(f'input index {index} out of range for {len(self._queues)} inputs')
        t = stamp_to_sec(msg.header.stamp) if stamp is None else float(stamp)
        with self._lock:
            q = self._queues[index]
            q.append((t, msg))
            q.sort(key=lambda e: e[0])
            while len(q) > self.queue_size:
                q.pop(0)
                self.dropped += 1
            found = self._find()
            if found is None:
                return None
            msgs = tuple(self._queues[i][j][1] for i, j in enumerate(found))
            for i, j in enumerate(found):
                self.dropped += j  # older messages of this stream are now stale
                del self._queues[i][:j + 1]
            self.emitted += 1
        for cb in self._callbacks:
            cb(*msgs)
        return msgs

    def _find(self) -> Optional[Sequence[int]]:
        """Return the indices (one per stream) of the newest set whose stamp spread is <= slop."""
        if any(not q for q in self._queues):
            return None
        best, best_key = None, None
        for combo in itertools.product(*[range(len(q)) for q in self._queues]):
            ts = [self._queues[i][j][0] for i, j in enumerate(combo)]
            spread = max(ts) - min(ts)
            if spread > self.slop:
                continue
            key = (min(ts), -spread)
            if best_key is None or key > best_key:
                best, best_key = combo, key
        return best

    def clear(self) -> None:
        with self._lock:
            for q in self._queues:
                q.clear()
