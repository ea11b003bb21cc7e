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

"""Markdown table and PCK-curve plot of ``evaluate_model`` results."""
from __future__ import annotations

from ccl_perception.evaluation.metrics import PCK_THRESHOLDS


def _row(label: str, r: dict) -> str:
    cells = [f"{100 * r['pck'][str(t)]:.1f} ± {100 * r.get('pck_std', {}).get(str(t), 0.0):.1f}"
             for t in PCK_THRESHOLDS]
    return (f'| {label} | ' + ' | '.join(cells)
            + f" | {100 * r['auc']:.1f} ± {100 * r.get('auc_std', 0.0):.1f}"
            + f" | {100 * r['norm_mean_px_error']:.2f}"
            + f" ± {100 * r.get('norm_mean_px_error_std', 0.0):.2f} |")


def markdown_table(results: dict, title: str = 'model') -> str:
    """
    Markdown: overall row, per split (seen/unseen) and per object; numbers in percent.

    Columns: PCK@t (%), AUC of PCK@1..50 (%), mean error / image diagonal (%); mean ± std
    over pairs.
    """
    head = ('| | ' + ' | '.join(f'PCK@{t}' for t in PCK_THRESHOLDS) + ' | AUC | norm. error |\n'
            + '|---' * (len(PCK_THRESHOLDS) + 3) + '|')
    lines = [f'## {title}', '',
             f"{results['num_pairs']} pairs, {results['num_keypoints']} keypoints, "
             f"matching: {results.get('method', 'argmax')}. Values in %, mean ± std over pairs.",
             '',
             head, _row('**all**', results)]
    for split, r in results.get('per_split', {}).items():
        lines.append(_row(f'{split} objects', r))
    lines += ['', '### Per object', '', head]
    for name, r in results.get('per_object', {}).items():
        lines.append(_row(name, r))
    return '\n'.join(lines) + '\n'


def plot_pck_curves(curves: dict, path: str) -> None:
    """Save PCK curves ``{label: {'1': pck, ..., '50': pck}}`` as a PNG (matplotlib Agg)."""
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    fig, ax = plt.subplots(figsize=(5, 3.5))
    for label, curve in curves.items():
        ts = sorted(int(t) for t in curve)
        ax.plot(ts, [100 * curve[str(t)] for t in ts], label=label)
    ax.set_xlabel('threshold (pixels)')
    ax.set_ylabel('PCK (%)')
    ax.set_ylim(0, 100)
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def write_report(results: dict, json_path: str, title: str = 'model') -> dict:
    """
    Write ``json_path``, the markdown table (``.md``) and the PCK plot (``_pck.png``) beside it.

    Returns:
        ``{'json', 'markdown', 'plot'}`` paths.
    """
    import json
    import os
    base = os.path.splitext(json_path)[0]
    os.makedirs(os.path.dirname(os.path.abspath(json_path)), exist_ok=True)
    with open(json_path, 'w', encoding='utf-8') as f:
        json.dump(results, f, indent=1)
    with open(base + '.md', 'w', encoding='utf-8') as f:
        f.write(markdown_table(results, title))
    plot_pck_curves({title: results['pck_curve']}, base + '_pck.png')
    return {'json': json_path, 'markdown': base + '.md', 'plot': base + '_pck.png'}
