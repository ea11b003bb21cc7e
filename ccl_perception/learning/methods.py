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
The training methods of the paper, one :class:`Method` each: the only place a method is named.

A method is its objective (a function of ``ccl_perception.losses``), whether it needs the
descriptors of an unrelated image ``I_B`` and where its views come from (``I_A`` and its
augmented copy ``Î_A``, or two rendered views with exact correspondences). The config's
``method`` key, the trainer, the benchmark and the tests read the names from :data:`METHODS`.

Adding a loss: one objective function in ``losses.py``, one :func:`register` call here (or
in the caller's code), one YAML file with ``method: <name>`` in ``training/configs/``.
"""

from dataclasses import dataclass

from torch import nn

from .. import losses


@dataclass(frozen=True)
class Method:
    """
    One training method.

    Attributes:
        name: the config's ``method`` value.
        objective: a :data:`ccl_perception.losses.Objective`.
        second_image: the objective needs ``desc_b``, the map of an unrelated image ``I_B``.
        rendered_pairs: the views are two rendered frames of a scene with exact
            correspondences from depth and camera poses
            (:class:`~ccl_perception.learning.supervised.RenderedPairs`) instead of ``I_A``
            and its augmented copy; ``data.root`` must be such a rendered dataset.
        summary: one line for ``--help`` and error messages.
    """

    name: str
    objective: losses.Objective
    second_image: bool = False
    rendered_pairs: bool = False
    summary: str = ''


#: name -> :class:`Method`, in the order of the paper's Table I.
METHODS = {}


def register(method: Method) -> Method:
    """Add ``method`` to :data:`METHODS` (a name already taken is an error); return it."""
    if not method.name or method.name in METHODS:
        raise ValueError(f'method name {method.name!r} is empty or taken')
    METHODS[method.name] = method
    return method


def method_names() -> tuple:
    """Return the registered method names."""
    return tuple(METHODS)


def get_method(name) -> Method:
    """Return the :class:`Method` named ``name`` (a Method is returned as it is)."""
    if isinstance(name, Method):
        return name
    if name not in METHODS:
        raise ValueError(f'unknown method {name!r}; choose one of {method_names()}')
    return METHODS[name]


register(Method('identical_view', losses.identical_view_objective,
                summary='identical view (Eq. 10): I_A against an augmented copy of itself'))
register(Method('ccl', losses.cycle_objective, second_image=True,
                summary='cycle-correspondence loss (Eq. 9) through an unrelated image I_B'))
register(Method('ccl_iv', losses.cycle_plus_identical_view_objective, second_image=True,
                summary='CCL + loss.lambda_iv * identical view'))
register(Method('supervised', losses.identical_view_objective, rendered_pairs=True,
                summary='Eq. 5 on exact correspondences between two rendered views'))


def loss_params(loss: dict) -> losses.LossParams:
    """Return the :class:`~ccl_perception.losses.LossParams` of the config's ``loss`` section."""
    return losses.LossParams(
        tau=float(loss['tau']), quantile=float(loss['quantile']),
        lambda_iv=float(loss['lambda_iv']), use_quantile_drop=bool(loss['use_quantile_drop']),
        use_variance_scaling=bool(loss['use_variance_scaling']))


class CorrespondenceLoss(nn.Module):
    """
    The training objective of one method with its hyper-parameters bound.

    Args:
        method: a :class:`Method` or a registered name.
        params: :class:`~ccl_perception.losses.LossParams`.
    """

    def __init__(self, method, params: losses.LossParams):
        super().__init__()
        self.method = get_method(method)
        self.params = params

    @property
    def needs_second_image(self) -> bool:
        """Return True for the methods that need an unrelated image I_B."""
        return self.method.second_image

    def forward(self, desc_a, desc_a_hat, kp_a, kp_a_hat, valid=None, desc_b=None, details=None):
        """
        Compute the loss. Shapes as in :data:`ccl_perception.losses.Objective`.

        Returns:
            ``(loss, stats)`` with a dict of floats for logging.
        """
        if self.needs_second_image and desc_b is None:
            raise ValueError(f'method {self.method.name!r} needs desc_b, the descriptors of a '
                             'second image I_B')
        return self.method.objective(desc_a, desc_a_hat, kp_a, kp_a_hat, valid, desc_b,
                                     self.params, details)
