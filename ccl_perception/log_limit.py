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
Log a message that repeats every frame only when it changes, else now and then (no ROS).

A planner abstains or finds a pose on every frame (up to 15 per second); logging each one
buries everything else, throttling alone hides a change of reason. :class:`LogLimiter`
passes a message when its *kind* differs from the last one passed (the text with its
numbers blanked: ``similarity 0.71 < 0.8`` and ``similarity 0.69 < 0.8`` are one kind) or
when ``interval_s`` has passed, and appends how many it held back since the last one.
"""

import re
import time
from typing import Optional

_NUMBER = re.compile(r'[-+]?\d+(\.\d+)?([eE][-+]?\d+)?')


def kind(text: str) -> str:
    """``text`` with every number replaced by ``#``."""
    return _NUMBER.sub('#', text)


class LogLimiter:
    """
    Decide which of a stream of messages to log.

    Args:
        interval_s: a message of the same kind as the last logged one is passed at most
            this often.
    """

    def __init__(self, interval_s: float):
        self.interval_s = float(interval_s)
        self._kind = None
        self._last = None
        self._held = 0

    def __call__(self, now: float, text: str) -> Optional[str]:
        """Return the line to log for ``text`` at ``now`` (monotonic seconds), or None."""
        k = kind(text)
        if k == self._kind and now - self._last < self.interval_s:
            self._held += 1
            return None
        held, self._held, self._kind, self._last = self._held, 0, k, now
        return text + (f' (+{held} not logged since the last message)' if held else '')

    # rclpy refuses two severities from one call site ("Logger severity cannot be changed
    # between calls"): each severity has its own method, so its own line.
    def warning(self, logger, text: str) -> None:
        """Log ``text`` as a warning on ``logger`` (a ROS node's) when it passes now."""
        line = self(time.monotonic(), text)
        if line is not None:
            logger.warning(line)

    def info(self, logger, text: str) -> None:
        """Log ``text`` as info on ``logger`` when it passes now."""
        line = self(time.monotonic(), text)
        if line is not None:
            logger.info(line)
