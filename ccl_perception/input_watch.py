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
Why a node has had no input for a while, in words that fit what did arrive (no ROS).

A node's watchdog (``nodes.watch_input``) ticks :class:`InputWatch` with its message counts
(``{what: received so far}``, the first entry being what the node needs, e.g. synchronised
colour+depth pairs). When the first count has not grown for ``period_s`` seconds the watch
returns one of three texts:

* nothing ever arrived on any input: the topic names, ``camera_ns`` or an oversized frame
  (the DDS transport drops it before any callback) are the likely causes;
* other inputs arrive but not what the node needs: one input never arrived (it is named:
  e.g. no aligned depth from a RealSense started without ``align_depth.enable:=true``), or
  colour and depth do not pair (stamps further apart than ``sync_slop``);
* inputs arrived earlier and then stopped: the camera stopped or paused (a simulated
  camera skips its frames while a grasp runs).

The watch is armed at its first tick, not when it is made, so a slow start-up (a model
loading before the executor spins) is not reported as missing input, and it says so at
most once per ``period_s``.
"""

from typing import Dict, Optional


class InputWatch:
    """
    Decide, tick by tick, whether (and how) to report missing input.

    Args:
        period_s: seconds without growth of the needed count before a report.
    """

    def __init__(self, period_s: float):
        self.period_s = float(period_s)
        self._since = None            # time of the last growth (or of arming)
        self._at_since: Dict[str, int] = {}

    def tick(self, now: float, counts: Dict[str, int]) -> Optional[str]:
        """
        Return the report text, or None (input flows, or not ``period_s`` yet).

        Args:
            now: monotonic seconds.
            counts: ``{what: messages received so far}``, the needed one first.
        """
        need = next(iter(counts))
        if self._since is None or counts[need] > self._at_since.get(need, 0):
            self._since, self._at_since = now, dict(counts)
            return None
        if now - self._since < self.period_s:
            return None
        grew = [k for k, v in counts.items() if v > self._at_since.get(k, 0)]
        never = [k for k, v in counts.items() if k != need and v == 0]
        seen = ', '.join(f'{k} {v}' for k, v in counts.items())
        head = f'no {need} in the last {self.period_s:g} s (received so far: {seen})'
        self._since, self._at_since = now, dict(counts)
        if grew and never:
            return (f'{head}; {", ".join(grew)} arrive(s) but never {", ".join(never)}: check '
                    'that topic (a RealSense needs align_depth.enable:=true for the aligned '
                    'depth)')
        if grew:
            return (f'{head}; {", ".join(grew)} arrive(s) but make no {need}: colour and depth '
                    'stamps further apart than sync_slop, or one of them missing')
        if any(counts.values()):
            return (f'{head}; the input stopped: the camera stopped or paused (a simulated '
                    'camera skips its frames while a grasp runs)')
        return (f'{head}; check the topic names / camera_ns and that the camera publishes; '
                'frames larger than the DDS transport delivers (e.g. 1280x720 over UDP) are '
                'dropped before any callback')
