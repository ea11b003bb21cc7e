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
Export a frozen-trunk model as the package's shipped default (head only, trunk referenced).

    python training/export_default_model.py --checkpoint runs/default_model/model.pt \
        --out ccl_perception/models/ccl_default.pt

The trunk must be the untouched ImageNet one (trained with ``optim.trunk: frozen``); the file
then holds only the head (~2.5 MB) and the sha256 of the trunk it was trained on
(:mod:`ccl_perception.model_zoo`). The training config, the validation score, the training
temperature and the source checkpoint's model identity are stored with it, and the sha256 of
its own tensors (``tensor_sha256``, written by ``save_checkpoint``, checked on every load; also
in the card), so a damaged copy is refused.
"""
import argparse
import os
import sys

from ccl_perception.checkpoint import CheckpointError, load_checkpoint, model_identity
from ccl_perception.model_zoo import DEFAULT_MODEL_FILE, save_head_only


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('--checkpoint', required=True,
                    help='trained model (model.pt of a frozen-trunk run)')
    ap.add_argument('--out', default=DEFAULT_MODEL_FILE,
                    help='destination (default: the shipped model)')
    args = ap.parse_args(argv)
    try:
        data = load_checkpoint(args.checkpoint)
        from ccl_perception.checkpoint import load_model
        model = load_model(args.checkpoint)
        extra = data.get('extra') or {}
        keep = {k: extra[k] for k in ('config', 'method', 'validation', 'tau') if k in extra}
        step = _weights_step(args.checkpoint, int(data['step']))
        keep['source'] = {'checkpoint': os.path.abspath(args.checkpoint), 'step': step,
                          'identity': model_identity(data)}
        save_head_only(args.out, model, step=step, extra=keep)
        card = write_card(args.out, keep, args.checkpoint)
    except (CheckpointError, ValueError, OSError) as exc:
        print(f'export_default_model: error: {exc}', file=sys.stderr)
        return 2
    size = os.path.getsize(args.out) / 2 ** 20
    print(f'wrote {args.out} ({size:.2f} MiB) and {card}, '
          f'model identity {keep["source"]["identity"]}')
    return 0


def _weights_step(checkpoint: str, step: int) -> int:
    """
    Return the step the weights are from.

    The run's best validated step when its metrics say so (runs before the trainer stored it
    in model.pt), else the checkpoint's own step.
    """
    import json
    metrics = os.path.join(os.path.dirname(os.path.abspath(checkpoint)), 'metrics.json')
    if os.path.basename(checkpoint) == 'model.pt' and os.path.isfile(metrics):
        with open(metrics, encoding='utf-8') as f:
            best = json.load(f).get('best_step')
        if best is not None:
            return int(best)
    return step


def _stored_checksum(model_path: str) -> str:
    """Return the ``tensor_sha256`` the exported file carries (``save_checkpoint`` wrote it)."""
    import torch
    return torch.load(model_path, map_location='cpu', weights_only=True)['tensor_sha256']


def write_card(model_path: str, extra: dict, checkpoint: str) -> str:
    """Write ``<model>.json`` next to the model: identity, training config, validation, metrics."""
    import datetime
    import json
    card = {
        'identity': extra['source']['identity'],
        'step': extra['source']['step'],
        'exported': datetime.date.today().isoformat(),
        'method': extra.get('method'),
        'tau': extra.get('tau'),
        'validation': extra.get('validation'),
        'config': extra.get('config'),
        'tensor_sha256': _stored_checksum(model_path),
    }
    metrics = os.path.join(os.path.dirname(os.path.abspath(checkpoint)), 'metrics.json')
    if os.path.isfile(metrics):
        with open(metrics, encoding='utf-8') as f:
            m = json.load(f)
        card['training'] = {k: m.get(k) for k in (
            'final_step', 'best_step', 'best_validation', 'wall_time_s', 'step_time_s',
            'peak_memory_mib', 'device', 'precision', 'cpu', 'validation_history')}
        if m.get('best_step') is not None and card['validation'] is None:
            card['validation'] = next((h for h in m.get('validation_history') or []
                                       if h.get('step') == m['best_step']), card['validation'])
    path = os.path.splitext(model_path)[0] + '.json'
    with open(path, 'w', encoding='utf-8') as f:
        json.dump(card, f, indent=1)
    return path


if __name__ == '__main__':
    sys.exit(main())
