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
How the descriptor model runs: the one default and the one allowed range of each setting.

``device``, ``backend`` and ``downscale`` are settings of every tool that runs the model
(the nodes' parameters, ``make_target``, :class:`ccl_perception.inference.DescriptorExtractor`,
the demo's trial runner); they all take their defaults and checks from here, and
config/*.yaml mirror the defaults (test/test_defaults.py). No torch and no ROS here.
"""

from ccl_perception.validation import choice, DEVICE, integer

#: Torch device of the model (``cpu``, ``cuda``, ``cuda:<index>``).
DEFAULT_DEVICE = 'cpu'
#: Inference backend: eager ``torch`` or ``onnx`` (ONNX Runtime, CPU).
DEFAULT_BACKEND = 'torch'
#: Camera images are shrunk this many times before the model (2: a 640x480 camera runs a
#: model trained at 320x240 at its training scale).
DEFAULT_DOWNSCALE = 1

BACKENDS = ('torch', 'onnx')
#: Allowed values (``Limit.check(name, value)`` raises a one-line ``ValueError``).
BACKEND = choice(*BACKENDS)
DOWNSCALE = integer(1, 8)
LIMITS = {'device': DEVICE, 'backend': BACKEND, 'downscale': DOWNSCALE}


def parse_downscale(text) -> int:
    """Return ``downscale`` given as text (a launch argument, ``'2'``) as a checked int."""
    try:
        value = int(str(text).strip())
    except ValueError:
        DOWNSCALE.check('downscale', text)  # raises, naming the value and the range
        raise
    return DOWNSCALE.check('downscale', value)


def compose_identity(model: str, downscale: int) -> str:
    """
    Identity of a model run at ``downscale``: ``model``, with ``/s`` appended when ``s > 1``.

    Targets carry it, so a target made at another scale is refused (:func:`split_identity`).
    """
    return model + (f'/{int(downscale)}' if int(downscale) > 1 else '')


def split_identity(identity: str):
    """Split ``'<model>[/s]'`` into ``(model, s)`` (``s`` = 1 without a suffix)."""
    model, sep, scale = str(identity).rpartition('/')
    if sep and scale.isdigit():
        return model, int(scale)
    return str(identity), 1
