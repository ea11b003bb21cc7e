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
Validation during training and keep-best model selection (rank 0).

With ``val_pairs`` the model is evaluated (keypoint transfer,
``ccl_perception.evaluation.evaluate.evaluate_model``) at step 0, every ``train.eval_every``
steps and at the end. With ``train.keep_best`` every improvement of :data:`SELECTION_METRIC`
is saved to ``<out>/best.pt`` and at the end ``model.pt`` gets the best weights (step 0
included), so no run ships worse than its start.
"""

import logging
import math
from pathlib import Path

from .config import View
from .run_state import model_extra, write_checkpoint

LOG = logging.getLogger(__name__)

BEST_NAME = 'best.pt'
#: Validation score that ``train.keep_best`` maximises (a key of ``evaluate_model``'s result).
SELECTION_METRIC = 'auc'


def find_evaluator():
    """Return ``evaluate_model``, or None (with a warning) when it cannot be imported."""
    try:
        from ..evaluation.evaluate import evaluate_model
    except ImportError as exc:
        LOG.warning('val_pairs is set but ccl_perception.evaluation.evaluate is unavailable '
                    '(%s): no evaluation', exc)
        return None
    return evaluate_model


def scalars_of(result: dict) -> dict:
    """Finite numbers of an evaluation result as floats (``pck`` as ``pck@<threshold>``)."""
    scalars = {}
    for key, value in result.items():
        if key == 'pck' and isinstance(value, dict):
            scalars.update({f'pck@{t}': float(v) for t, v in value.items()})
        elif (isinstance(value, (int, float)) and not isinstance(value, bool)
              and math.isfinite(value)):
            scalars[key] = float(value)
    return scalars


class Selection:
    """
    Validate on ``cfg['val_pairs']`` and keep the best model.

    Args:
        cfg: the merged config dict.
        out: run folder.
        state: the run's :class:`~ccl_perception.learning.run_state.RunState` (its ``best``
            and ``validation_history`` are updated).
        device: evaluation device.

    Attributes:
        evaluate_fn: ``evaluate_model``-like callable, None when the run does not validate
            (tests replace it).
    """

    def __init__(self, cfg: dict, out: Path, state, device):
        self.cfg, self.c = cfg, View(cfg)
        self.out, self.state, self.device = Path(out), state, device
        self.evaluate_fn = find_evaluator() if self.c.val_pairs else None

    @property
    def active(self) -> bool:
        """Return True when the run validates."""
        return self.evaluate_fn is not None

    def working_size(self):
        """Return the (W, H) validation runs at: the training size times ``train.eval_scale``."""
        scale = float(self.c.train.eval_scale)
        return (int(round(self.c.data.width * scale)), int(round(self.c.data.height * scale)))

    def validate(self, model, logbook) -> dict:
        """Evaluate ``model`` at the current step; save ``best.pt`` on an improvement."""
        was_training = model.training
        try:
            result = self.evaluate_fn(model, str(self.c.val_pairs), device=str(self.device),
                                      max_pairs=self.c.train.eval_max_pairs or None,
                                      progress=False, input_size=self.working_size())
        finally:
            model.train(was_training)
        scalars = scalars_of(result)
        step = self.state.step
        logbook.log_validation(scalars, step)
        score = scalars.get(SELECTION_METRIC)
        self.state.validation_history.append({'step': step, **scalars})
        if self.c.train.keep_best and score is not None and score > self.state.best['score']:
            self.state.best = {'step': step, 'score': float(score)}
            write_checkpoint(self.out / BEST_NAME, model, step=step,
                             extra={**model_extra(self.cfg), 'validation': scalars})
            LOG.info('step %d: best validation %s so far (%.4f) -> %s', step, SELECTION_METRIC,
                     score, self.out / BEST_NAME)
        return scalars

    def load_best(self, model):
        """
        Put the best validated weights into ``model`` (keep-best runs).

        Returns:
            ``(step, validation)`` of those weights, or ``(None, None)`` when the model keeps
            its last weights.
        """
        best = self.state.best
        if not (self.c.train.keep_best and best['step'] is not None):
            return None, None
        from ..checkpoint import load_checkpoint
        saved = load_checkpoint(str(self.out / BEST_NAME))
        model.load_state_dict(saved['model_state'])
        LOG.info('model.pt = the best validated model (step %d of %d, %s %.4f)', best['step'],
                 self.state.step, SELECTION_METRIC, best['score'])
        return best['step'], (saved.get('extra') or {}).get('validation')
