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
Allowed values of runtime settings: one small checker, one table per config surface.

A :class:`Limit` says what one setting may hold (a finite number in a range, an integer,
a choice, a flag, a string) and turns a bad value into a one-line ``ValueError`` that names
the setting, the value and the allowed range::

    >>> LIMITS = {'tau': real(0, 1, low_open=True)}
    >>> check(LIMITS, {'tau': float('nan')})
    Traceback (most recent call last):
    ValueError: tau = nan is not allowed: must be a finite number in (0, 1]

The tables live next to the defaults they guard (``grasp_pipeline.LIMITS``, the nodes'
parameter limits, ``learning.config.validate``); ``describe()`` is the text of the "allowed"
column of docs/ros_interface.md (test/test_validation.py checks that they agree).
No ROS and no torch here.
"""

from dataclasses import dataclass
import math
import re
from typing import Optional, Tuple


def _fmt(x: float) -> str:
    """Compact number for messages: 0.03, 1e-06, 100000, 2147483647."""
    if float(x).is_integer() and abs(x) < 1e16:
        return str(int(x))
    return f'{x:g}'


@dataclass(frozen=True)
class Limit:
    """
    What one setting may hold.

    Attributes:
        kind: ``'real'`` (finite int or float), ``'int'``, ``'bool'``, ``'choice'`` or ``'str'``.
        low, high: bounds of ``real`` / ``int`` (None = unbounded).
        low_open, high_open: exclude the bound itself.
        odd: ``int`` must be odd.
        choices: allowed values of ``choice``.
        pattern: regular expression a ``str`` must match in full (None = any string).
        hint: how ``pattern`` reads in a message (e.g. ``"cpu, cuda or cuda:<index>"``).
    """

    kind: str
    low: Optional[float] = None
    high: Optional[float] = None
    low_open: bool = False
    high_open: bool = False
    odd: bool = False
    choices: Tuple = ()
    pattern: Optional[str] = None
    hint: str = ''

    def describe(self) -> str:
        """
        Return the allowed values in words.

        E.g. ``(0, 1]``, ``odd integer in [1, 51]``, ``normal | camera``.
        """
        if self.kind == 'bool':
            return 'true | false'
        if self.kind == 'choice':
            return ' | '.join(str(c) for c in self.choices)
        if self.kind == 'str':
            return self.hint or 'any string'
        prefix = {'real': '', 'int': 'odd integer ' if self.odd else 'integer '}[self.kind]
        if self.low is None and self.high is None:
            return (prefix or 'finite number').strip()
        if self.high is None:
            return f'{prefix}{">" if self.low_open else ">="} {_fmt(self.low)}'
        if self.low is None:
            return f'{prefix}{"<" if self.high_open else "<="} {_fmt(self.high)}'
        lo, hi = '(' if self.low_open else '[', ')' if self.high_open else ']'
        return f'{prefix}{"in " if prefix else ""}{lo}{_fmt(self.low)}, {_fmt(self.high)}{hi}'

    def _must(self) -> str:
        text = self.describe()
        if self.kind == 'real':
            if self.low is None and self.high is None:
                return 'a finite number'
            return 'a finite number ' + (f'in {text}' if text[0] in '([' else text)
        if self.kind == 'choice':
            return 'one of ' + ', '.join(repr(c) for c in self.choices)
        if self.kind == 'bool':
            return 'true or false'
        if self.kind == 'str':
            return f'a string ({text})' if self.pattern else 'a string'
        return ('an ' if text.startswith(('odd', 'integer')) else 'an integer ') + text

    def check(self, name: str, value):
        """
        Return ``value`` (ints as float for ``real``) or raise ``ValueError`` naming it.

        Args:
            name: the setting's name, used in the message.
            value: the candidate value.
        """
        bad = ValueError(f'{name} = {value!r} is not allowed: must be {self._must()}')
        if self.kind == 'bool':
            if not isinstance(value, bool):
                raise bad
            return value
        if self.kind == 'choice':
            if isinstance(value, bool) or value not in self.choices:
                raise bad
            return value
        if self.kind == 'str':
            if not isinstance(value, str) or (
                    self.pattern and not re.fullmatch(self.pattern, value)):
                raise bad
            return value
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise bad
        if self.kind == 'int' and not (isinstance(value, int) or float(value).is_integer()):
            raise bad
        v = float(value)
        if not math.isfinite(v):
            raise bad
        if self.low is not None and (v < self.low or (self.low_open and v == self.low)):
            raise bad
        if self.high is not None and (v > self.high or (self.high_open and v == self.high)):
            raise bad
        if self.kind == 'int':
            if self.odd and int(v) % 2 == 0:
                raise bad
            return int(v)
        return v


def real(low: Optional[float] = None, high: Optional[float] = None, low_open: bool = False,
         high_open: bool = False) -> Limit:
    """Allow a finite number in ``[low, high]`` (``low_open`` / ``high_open``: bound excluded)."""
    return Limit('real', low, high, low_open, high_open)


def integer(low: Optional[int] = None, high: Optional[int] = None, odd: bool = False) -> Limit:
    """Allow an integer in ``[low, high]``, optionally odd."""
    return Limit('int', low, high, odd=odd)


def choice(*options) -> Limit:
    """Allow one of ``options``."""
    return Limit('choice', choices=tuple(options))


def flag() -> Limit:
    """Allow ``True`` or ``False`` (not 0 / 1)."""
    return Limit('bool')


def text(pattern: Optional[str] = None, hint: str = '') -> Limit:
    """Allow a string, matching ``pattern`` in full when given (``hint`` describes it)."""
    return Limit('str', pattern=pattern, hint=hint)


#: A torch device string as the nodes and the trainer accept it.
DEVICE = text(r'cpu|cuda(:\d+)?', 'cpu | cuda | cuda:<index>')
#: A name that must not be empty (frames, MoveIt groups and links).
NAME = text(r'\S+', 'non-empty string')
#: Torch CPU threads a tool may ask for (``--threads``): far above it torch crashes
#: (``evaluate --threads 100000`` segfaulted); 1024 runs here.
MAX_THREADS = 1024
THREADS = integer(1, MAX_THREADS)


def check(limits: dict, values: dict) -> dict:
    """
    Check every key of ``values`` that ``limits`` knows; return the checked values.

    Keys without a limit are passed through unchanged (the caller decides whether they are
    allowed). Raises the first ``ValueError`` of :meth:`Limit.check`.
    """
    return {k: (limits[k].check(k, v) if k in limits else v) for k, v in values.items()}
