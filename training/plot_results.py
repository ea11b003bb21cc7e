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

r"""
Plots of the README: loss curves, the CCL instruments over training, the q sweep (Fig. 4).

    python training/plot_results.py loss --runs runs/v2_ccl_iv_s0 runs/v2_iv_s0 --out loss.png

    python training/plot_results.py instruments --runs runs/v2_ccl_s0 runs/v2_ccl_uniform \
        --out out/instruments.png
    python training/plot_results.py qsweep --evals 'out/v2/eval_q*.json' --out out/qsweep.png

``loss`` reads each run's ``metrics.json`` (``loss_history``: the training loss every
``train.log_every`` steps, ``validation_history``) and draws both, one colour per run (each run
also writes its own ``<run>/loss.png`` at the end). ``instruments`` reads each run's
``metrics.json`` (``instruments``: sampled / kept cycles on
objects and the precision of kept cycles, logged every ``train.log_every`` steps) and draws
them over the steps, one colour per run. ``qsweep`` reads evaluation JSONs written by
``training/evaluate.py`` whose ``checkpoint`` names a run ``..._q<q>_vs`` (variance scaling
on) or ``..._q<q>_novs`` and draws AUC against q for both.
"""
import argparse
import glob
import json
import os
import re
import sys

from ccl_perception.learning.loss_curve import moving_average
import numpy as np

INSTRUMENT_PANELS = (
    ('kept_on_objects', 'kept cycles on objects'),
    ('kept_object_precision', 'precision of kept object cycles\n(k*_B within 1 cell)'),
    ('kept_background_precision', 'precision of kept background cycles'),
)


def plot_loss(runs, out: str) -> int:
    """Draw the loss curves of ``runs`` (``metrics.json`` of each); return an exit code."""
    from ccl_perception.learning.loss_curve import plot_loss_curves
    curves = []
    try:
        for run in runs:
            with open(os.path.join(run, 'metrics.json'), encoding='utf-8') as f:
                curves.append((os.path.basename(run.rstrip('/')), json.load(f)))
        plot_loss_curves(curves, out)
    except (OSError, ValueError) as exc:
        print(f'error: {exc}', file=sys.stderr)
        return 2
    print(f'wrote {out}')
    return 0


def plot_instruments(runs, out: str) -> None:
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    fig, axes = plt.subplots(1, len(INSTRUMENT_PANELS),
                             figsize=(4.2 * len(INSTRUMENT_PANELS), 3.4))
    for run in runs:
        path = os.path.join(run, 'metrics.json')
        with open(path, encoding='utf-8') as f:
            history = json.load(f).get('instruments') or []
        if not history:
            raise SystemExit(
                f'{path} has no instruments (train on rendered data with frames.json)')
        steps = [h['step'] for h in history]
        for ax, (key, title) in zip(axes, INSTRUMENT_PANELS):
            values = [np.nan if h.get(key) is None else h[key] for h in history]
            ax.plot(steps, moving_average(values, 5), label=os.path.basename(run.rstrip('/')))
            ax.set_title(title, fontsize=9)
            ax.set_xlabel('step')
            ax.set_ylim(0, 1)
            ax.grid(alpha=0.3)
    axes[0].legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(out, dpi=110)
    print(f'wrote {out}')


def plot_qsweep(evals, out: str) -> None:
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    curves = {'vs': {}, 'novs': {}}
    for path in evals:
        m = re.search(r'_q([0-9.]+)_(vs|novs)', os.path.basename(path))
        if not m:
            raise SystemExit(f'{path}: name must contain _q<q>_vs or _q<q>_novs')
        with open(path, encoding='utf-8') as f:
            res = json.load(f)
        curves[m.group(2)][float(m.group(1).rstrip('.'))] = (res['auc'], res['pck']['10'])
    fig, axes = plt.subplots(1, 2, figsize=(8.4, 3.4))
    for key, label in (('vs', 'with variance scaling'), ('novs', 'without variance scaling')):
        if not curves[key]:
            continue
        qs = sorted(curves[key])
        axes[0].plot(qs, [curves[key][q][0] for q in qs], 'o-', label=label)
        axes[1].plot(qs, [curves[key][q][1] for q in qs], 'o-', label=label)
    for ax, name in zip(axes, ('AUC of PCK@1..50', 'PCK@10')):
        ax.set_xlabel('q (fraction of cycles kept)')
        ax.set_title(name, fontsize=9)
        ax.grid(alpha=0.3)
    axes[0].legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(out, dpi=110)
    print(f'wrote {out}')


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest='what', required=True)
    a = sub.add_parser('instruments')
    a.add_argument('--runs', nargs='+', required=True)
    a.add_argument('--out', required=True)
    c = sub.add_parser('loss')
    c.add_argument('--runs', nargs='+', required=True)
    c.add_argument('--out', required=True)
    b = sub.add_parser('qsweep')
    b.add_argument('--evals', required=True, help='glob of evaluation JSONs')
    b.add_argument('--out', required=True)
    args = ap.parse_args(argv)
    if args.what == 'loss':
        return plot_loss(args.runs, args.out)
    if args.what == 'instruments':
        plot_instruments(args.runs, args.out)
    else:
        files = sorted(glob.glob(args.evals))
        if not files:
            print(f'error: no file matches {args.evals}', file=sys.stderr)
            return 2
        plot_qsweep(files, args.out)
    return 0


if __name__ == '__main__':
    sys.exit(main())
