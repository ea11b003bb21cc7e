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
Train the dense descriptor network (identical view, CCL, CCL + identical view, supervised).

    training/train.py --config training/configs/ccl_iv.yaml [--set key=value ...] [--resume] \
        [--out runs/ccl_iv]
    torchrun --nproc_per_node=K training/train.py --config ...  # DDP, a process per GPU/CPU shard

Bad input (config, data, checkpoint, a full disk) is one logged line and exit code 2. Ctrl-C
finishes the step, saves ``<out>/checkpoint.pt``, prints the command that resumes the run and
exits with 130. Everything else lives in ``ccl_perception.learning``.
"""
import logging
from pathlib import Path
import shlex
import sys

LOG = logging.getLogger('train')


def parse_args(argv=None):
    """Return the parsed command line (one-line usage errors, exit code 2)."""
    from ccl_perception.cli import ArgumentParser
    parser = ArgumentParser(
        prog='train',
        description='Train the dense descriptor network (CCL paper methods).')
    parser.add_argument('--config', help='YAML config merged over training/configs/default.yaml '
                        '(with --resume and no --config: the config stored in the checkpoint)')
    parser.add_argument('--set', dest='overrides', action='append', default=[],
                        metavar='KEY=VALUE',
                        help='override a config key, e.g. --set train.steps=100 (repeatable)')
    parser.add_argument('--resume', nargs='?', const='auto', default=None, metavar='CHECKPOINT',
                        help='continue from <out>/checkpoint.pt (or the given checkpoint)')
    parser.add_argument('--out', help='run folder (default runs/<config name>)')
    return parser.parse_args(argv)


def resume_command(out: Path) -> str:
    """Return the shell command that continues the run in ``out`` (its stored config)."""
    return f'python training/train.py --resume --out {shlex.quote(str(out))}'


def main(argv=None) -> int:
    """Parse arguments, merge the config, train. Returns an exit code."""
    from ccl_perception.checkpoint import CheckpointError
    from ccl_perception.learning import distributed
    from ccl_perception.learning.config import ConfigError, load_config
    from ccl_perception.learning.dataset import DatasetError
    from ccl_perception.learning.run_state import (resume_config, TrainingError,
                                                   TrainingInterrupted)
    from ccl_perception.learning.trainer import Trainer
    args = parse_args(argv)
    logging.basicConfig(level=logging.INFO,
                        format='%(asctime)s %(levelname)s %(name)s: %(message)s')
    out = Path(args.out) if args.out else Path('runs') / \
        (Path(args.config).stem if args.config else 'default')
    ctx = None
    try:
        if args.config is None and args.resume is not None:
            cfg = resume_config(out, args.resume, args.overrides)
        else:
            cfg = load_config(args.config, args.overrides)
        ctx = distributed.init_distributed(cfg['train']['device'])
        if ctx.rank != 0:
            logging.getLogger().setLevel(logging.WARNING)
        trainer = Trainer(cfg, out, resume=args.resume, ctx=ctx)
        if trainer.step >= int(cfg['train']['steps']):
            LOG.info('run %s is already complete (step %d of %d): nothing to do; raise '
                     'train.steps to continue it', out, trainer.step, cfg['train']['steps'])
            return 0
        metrics = trainer.run()
    except (ConfigError, DatasetError, CheckpointError, TrainingError, ValueError, OSError) as exc:
        LOG.error('%s', ' '.join(str(exc).split()))  # one line
        return 2
    except TrainingInterrupted as stop:
        if ctx is None or ctx.is_main:
            print(f'\ninterrupted at step {stop.step} of {stop.total}: saved {stop.checkpoint}; '
                  f'resume with:\n  {resume_command(out)}', file=sys.stderr)
        return 130
    except KeyboardInterrupt:  # outside the training loop (scan, PCA start, final saves)
        saved = out / 'checkpoint.pt'
        tail = (f'{saved} is intact; resume with:\n  {resume_command(out)}' if saved.exists()
                else 'no checkpoint was written yet')
        print(f'\ninterrupted; {tail}', file=sys.stderr)
        return 130
    finally:
        if ctx is not None:
            distributed.cleanup(ctx)
    if ctx.is_main:
        LOG.info('done: step %d, %.2f images/s, peak memory %.0f MiB, %s -> %s',
                 metrics['final_step'], metrics['images_per_s'], metrics['peak_memory_mib'],
                 metrics['precision'], out)
    return 0


if __name__ == '__main__':
    sys.exit(main())
