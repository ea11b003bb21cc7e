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
Training configuration: YAML files merged over the commented default config.

Every key and its default lives in ``training/configs/default.yaml`` (one comment per key).
A method config (``ccl.yaml``, ...) lists only what it changes; ``--set a.b=value`` overrides
win over both. Unknown keys are an error, so a typo never silently trains with a default.
"""

import copy
import math
import os
from pathlib import Path

import yaml

METHODS = ('identical_view', 'ccl', 'ccl_iv', 'supervised')


def _default_config_path() -> Path:
    """
    Find the default training config.

    ``CCL_TRAIN_DEFAULTS`` if set; else ``training/configs/default.yaml`` of the source tree
    (editable install / venv); else the copy a colcon install puts in the package's share dir.
    """
    if os.environ.get('CCL_TRAIN_DEFAULTS'):
        return Path(os.environ['CCL_TRAIN_DEFAULTS'])
    source = Path(__file__).resolve().parents[2] / 'training' / 'configs' / 'default.yaml'
    if source.is_file():
        return source
    try:
        from ament_index_python.packages import get_package_share_directory
        return Path(get_package_share_directory('ccl_perception')) / \
            'training' / 'configs' / 'default.yaml'
    except (ImportError, LookupError):
        return source


DEFAULT_CONFIG_PATH = _default_config_path()


class ConfigError(ValueError):
    """A config file or override is missing, malformed, or names an unknown key."""


def read_yaml(path) -> dict:
    """Read one YAML mapping; an empty file is ``{}``."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f'config file not found: {path}')
    try:
        with open(path, encoding='utf-8') as f:
            data = yaml.safe_load(f)
    except yaml.YAMLError as exc:
        raise ConfigError(f'config file {path} is not valid YAML: {exc}') from exc
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f'config file {path} must hold a mapping, got {type(data).__name__}')
    return data


#: Mappings whose keys are checked by the code that consumes them, not here (``augment``:
#: ``CorrespondenceAugmentation`` refuses unknown keys), so repeated ``--set augment.x=...``
#: add up.
OPEN_MAPPINGS = ('augment',)


def merge(base: dict, update: dict, where: str = '') -> dict:
    """
    Recursively merge ``update`` over a deep copy of ``base``.

    Unknown keys raise ConfigError.
    """
    out = copy.deepcopy(base)
    for key, value in update.items():
        name = f'{where}{key}'
        if key not in out:
            raise ConfigError(f'unknown config key "{name}" (known: {sorted(out)})')
        if isinstance(out[key], dict):
            if not isinstance(value, dict):
                raise ConfigError(f'config key "{name}" must be a mapping, got {value!r}')
            # "augment: {}" takes any keys (checked by its consumer)
            if not out[key] or name in OPEN_MAPPINGS:
                out[key] = {**out[key], **copy.deepcopy(value)}
                continue
            out[key] = merge(out[key], value, name + '.')
        else:
            out[key] = copy.deepcopy(value)
    return out


def parse_override(text: str) -> dict:
    """
    Turn ``"a.b=value"`` into ``{'a': {'b': value}}``.

    The value is parsed as YAML (``1e-4``, ``null``).
    """
    if '=' not in text:
        raise ConfigError(f'override "{text}" must look like key.sub=value')
    key, raw = text.split('=', 1)
    key = key.strip()
    if not key or any(not part for part in key.split('.')):
        raise ConfigError(f'override "{text}" has an empty key')
    try:
        value = yaml.safe_load(raw) if raw.strip() else None
    except yaml.YAMLError as exc:
        raise ConfigError(f'override "{text}": value is not valid YAML: {exc}') from exc
    if isinstance(value, str) and _looks_like_float(value):
        value = float(value)  # YAML 1.1 reads "3e-5" as a string
    node = value
    for part in reversed(key.split('.')):
        node = {part: node}
    return node


def _looks_like_float(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def _fix_floats(node):
    """YAML 1.1 (PyYAML) reads ``3e-5`` (no dot) as a string; turn such strings into floats."""
    if isinstance(node, dict):
        return {k: _fix_floats(v) for k, v in node.items()}
    if isinstance(node, str) and _looks_like_float(node) and any(c in node for c in 'eE'):
        return float(node)
    return node


def load_config(path=None, overrides=(), defaults_path=None) -> dict:
    """
    Load the default config, merge ``path`` over it, then each ``key=value`` override.

    Args:
        path: a YAML config (may be None for the defaults alone).
        overrides: iterable of ``"a.b=value"`` strings.
        defaults_path: the commented default config; ``DEFAULT_CONFIG_PATH`` when None.

    Returns:
        The merged, validated config dict.

    Raises:
        ConfigError: missing file, bad YAML, unknown key, or an invalid value.
    """
    cfg = read_yaml(defaults_path or DEFAULT_CONFIG_PATH)
    if path is not None:
        cfg = merge(cfg, read_yaml(path))
    for text in overrides or ():
        cfg = merge(cfg, parse_override(text))
    cfg = _fix_floats(cfg)
    validate(cfg)
    return cfg


def validate(cfg: dict) -> None:
    """Check the values the trainer relies on; raise ConfigError with the offending key."""
    _check_ranges(cfg)
    if cfg['method'] not in METHODS:
        raise ConfigError(f'method must be one of {METHODS}, got {cfg["method"]!r}')
    data = cfg['data']
    for key in ('height', 'width', 'num_keypoints'):
        if not isinstance(data[key], int) or data[key] <= 0:
            raise ConfigError(f'data.{key} must be a positive integer, got {data[key]!r}')
    train = cfg['train']
    for key in ('steps', 'batch_size', 'log_every', 'checkpoint_every'):
        if not isinstance(train[key], int) or train[key] <= 0:
            raise ConfigError(f'train.{key} must be a positive integer, got {train[key]!r}')
    for key in ('amp', 'channels_last', 'progress'):
        if train[key] not in (True, False):
            raise ConfigError(f'train.{key} must be true or false, got {train[key]!r}')
    optim = cfg['optim']
    if not isinstance(optim['lr'], (int, float)) or optim['lr'] <= 0:
        raise ConfigError(f'optim.lr must be a positive number, got {optim["lr"]!r}')
    loss = cfg['loss']
    if not isinstance(loss['tau'], (int, float)) or loss['tau'] <= 0:
        raise ConfigError(f'loss.tau must be > 0, got {loss["tau"]!r}')
    if not 0.0 < float(loss['quantile']) <= 1.0:
        raise ConfigError(
            f'loss.quantile (fraction kept) must be in (0, 1], got {loss["quantile"]!r}')
    model = cfg['model']
    from ..heads import HEADS
    from ..model import TRUNK_MODES
    if model['head'] not in HEADS:
        raise ConfigError(f'model.head must be one of {HEADS}, got {model["head"]!r}')
    if not isinstance(model['head_hidden'], int) or model['head_hidden'] <= 0:
        raise ConfigError(
            f'model.head_hidden must be a positive integer, got {model["head_hidden"]!r}')
    if model['head_init'] not in ('pca', 'random'):
        raise ConfigError(f'model.head_init must be pca or random, got {model["head_init"]!r}')
    if not isinstance(model['head_init_images'], int) or model['head_init_images'] <= 0:
        raise ConfigError(
            'model.head_init_images must be a positive integer, '
            f'got {model["head_init_images"]!r}')
    if optim['trunk'] not in TRUNK_MODES:
        raise ConfigError(f'optim.trunk must be one of {TRUNK_MODES}, got {optim["trunk"]!r}')
    if not _finite_number(optim['trunk_lr_scale']) or optim['trunk_lr_scale'] < 0:
        raise ConfigError(
            f'optim.trunk_lr_scale must be a number >= 0, got {optim["trunk_lr_scale"]!r}')
    from .dataset import KEYPOINT_MODES
    if data['keypoints'] not in KEYPOINT_MODES:
        raise ConfigError(
            f'data.keypoints must be one of {KEYPOINT_MODES}, got {data["keypoints"]!r}')
    fgc = data['foreground']
    if not _finite_number(fgc['share']) or not 0.0 <= fgc['share'] <= 1.0:
        raise ConfigError(f'data.foreground.share must be in [0, 1], got {fgc["share"]!r}')
    if not _finite_number(fgc['threshold']) or fgc['threshold'] <= 0:
        raise ConfigError(
            f'data.foreground.threshold must be > 0 (grey levels), got {fgc["threshold"]!r}')
    if not isinstance(fgc['max_frames'], int) or fgc['max_frames'] <= 0:
        raise ConfigError(
            f'data.foreground.max_frames must be a positive integer, got {fgc["max_frames"]!r}')
    if not _finite_number(fgc['paste_background']) or not 0.0 <= fgc['paste_background'] <= 1.0:
        raise ConfigError('data.foreground.paste_background must be in [0, 1], '
                          f'got {fgc["paste_background"]!r}')
    if fgc['paste_background'] > 0 and data['keypoints'] != 'foreground':
        raise ConfigError('data.foreground.paste_background needs data.keypoints=foreground '
                          '(it pastes behind the estimated foreground)')
    if not _finite_number(fgc['cell_fraction']) or not 0.0 < fgc['cell_fraction'] <= 1.0:
        raise ConfigError(
            f'data.foreground.cell_fraction must be in (0, 1], got {fgc["cell_fraction"]!r}')
    for key in ('augment_a', 'cache_trunk_features', 'keep_best', 'instruments'):
        if train[key] not in (True, False):
            raise ConfigError(f'train.{key} must be true or false, got {train[key]!r}')
    if loss['sanity_b_from_a'] not in (True, False):
        raise ConfigError(
            f'loss.sanity_b_from_a must be true or false, got {loss["sanity_b_from_a"]!r}')
    if cfg['method'] == 'supervised' and not data.get('root'):
        raise ConfigError(
            'method "supervised" needs data.root: a rendered dataset with depth and cameras')


def _check_ranges(cfg: dict) -> None:
    """
    Check the values not checked below, against ``ccl_perception.validation`` limits.

    NaN, inf, wrong types, unknown backbone / trunk / device: raise ConfigError naming the key.
    """
    from ..backbones import BACKBONES, TRUNKS
    from ..validation import DEVICE, choice, flag, integer, real, text
    optional_path = text(r'.*\S.*', 'a non-empty path or null')
    limits = {
        'seed': integer(0), 'init_from': optional_path, 'val_pairs': optional_path,
        'model.backbone': choice(*BACKBONES), 'model.trunk': choice(*TRUNKS),
        'model.descriptor_dim': integer(1, 4096), 'model.pretrained': flag(),
        'data.root': optional_path, 'data.verify_images': flag(),
        'data.num_workers': integer(0, 256),
        'loss.tau': real(0, 1, low_open=True), 'loss.quantile': real(0, 1, low_open=True),
        'loss.lambda_iv': real(0), 'loss.use_quantile_drop': flag(),
        'loss.use_variance_scaling': flag(),
        'optim.lr': real(0, 1, low_open=True), 'optim.weight_decay': real(0),
        'optim.grad_clip': real(0),
        'train.device': text(r'auto|' + DEVICE.pattern, 'auto | ' + DEVICE.hint),
        'train.threads': integer(0, 1024),
        'train.image_every': integer(0), 'train.eval_every': integer(1),
        'train.eval_max_pairs': integer(0), 'train.eval_scale': real(0.25, 4),
    }
    nullable = {'init_from', 'val_pairs', 'model.trunk', 'data.root'}
    for key, limit in limits.items():
        section, _, name = key.rpartition('.')
        node = cfg[section] if section else cfg
        if name not in node or (key in nullable and node[name] is None):
            continue
        try:
            limit.check(key, node[name])
        except ValueError as exc:
            raise ConfigError(str(exc)) from None


def _finite_number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def dump_config(cfg: dict) -> str:
    """Return the config as YAML text (stored next to checkpoints, logged to TensorBoard)."""
    return yaml.safe_dump(cfg, sort_keys=False)
