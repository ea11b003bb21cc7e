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
The loss curve of one or more runs as a picture (``<out>/loss.png``, ``plot_results.py loss``).

Left: the training loss every ``train.log_every`` steps (``loss_history`` of ``metrics.json``,
kept across resumes), with a moving average, one colour per run; the loss terms of CCL + IV
(``loss_ccl``, ``loss_iv``) dashed. Right: the validation score (``validation_history``,
AUC) at its steps, the selected best step marked. Runs without validation leave it empty.
"""

import numpy as np


def moving_average(values, k: int) -> np.ndarray:
    """Mean of the last ``k`` finite values at each position (NaN where none)."""
    v = np.asarray(values, float)
    out = np.full_like(v, np.nan)
    for i in range(len(v)):
        window = v[max(0, i - k + 1):i + 1]
        window = window[np.isfinite(window)]
        out[i] = window.mean() if len(window) else np.nan
    return out


def plot_loss_curves(runs, out, metric: str = 'auc') -> str:
    """
    Draw the loss curves of ``runs`` into the PNG file ``out``.

    Args:
        runs: list of ``(label, metrics)``, ``metrics`` a run's ``metrics.json`` dict
            (``loss_history``, ``validation_history``, ``best_step``).
        out: output file.
        metric: validation score drawn on the right.

    Returns:
        ``out``.

    Raises:
        ValueError: no run has a loss history.
    """
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    if not any(m.get('loss_history') for _, m in runs):
        raise ValueError('no loss history to draw (metrics.json without loss_history)')
    fig, (ax, ax_val) = plt.subplots(1, 2, figsize=(9.6, 3.6))
    for k, (label, metrics) in enumerate(runs):
        color = f'C{k % 10}'
        history = metrics.get('loss_history') or []
        steps = [h['step'] for h in history]
        loss = [h['loss'] for h in history]
        ax.plot(steps, loss, color=color, alpha=0.25, lw=0.8)
        ax.plot(steps, moving_average(loss, max(1, len(loss) // 20)), color=color, label=label)
        if history and {'loss_ccl', 'loss_iv'} <= set(history[0]):  # the two terms of CCL + IV
            for term, style in (('loss_ccl', '--'), ('loss_iv', ':')):
                values = [h.get(term, np.nan) for h in history]
                ax.plot(steps, moving_average(values, max(1, len(loss) // 20)), color=color,
                        ls=style, lw=0.9, label=f'{label} {term}')
        val = [(h['step'], h[metric]) for h in metrics.get('validation_history') or []
               if h.get(metric) is not None]
        if val:
            ax_val.plot(*zip(*val), 'o-', color=color, ms=3, label=label)
            best = metrics.get('best_step')
            if best is not None:
                ax_val.plot([s for s, _ in val if s == best], [v for s, v in val if s == best],
                            '*', color=color, ms=12)
    ax.set_xlabel('step')
    ax.set_ylabel('training loss')
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    ax_val.set_xlabel('step')
    ax_val.set_ylabel(f'validation {metric} (* = kept)')
    ax_val.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(str(out), dpi=100)
    plt.close(fig)
    return str(out)
