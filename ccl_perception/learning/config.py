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
import os
from pathlib import Path

import yaml


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
#: The folder of the shipped configs (``ccl_iv.yaml``: the recipe of the default model).
CONFIG_DIR = DEFAULT_CONFIG_PATH.parent


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


#: Training resolution bounds (pixels): a multiple of the descriptor stride 8, at least two
#: cells, at most 4096 (a 4096 x 4096 batch of 4 already needs tens of GB).
SIZE_STEP, SIZE_MIN, SIZE_MAX = 8, 16, 4096


def _limits() -> dict:
    """Return the allowed values of every checked key (``ccl_perception.validation``)."""
    from ..backbones import BACKBONES, TRUNKS
    from ..heads import HEADS
    from ..model import TRUNK_MODES
    from ..validation import choice, DEVICE, flag, integer, real, text
    from .dataset import KEYPOINT_MODES
    from .methods import method_names
    path = text(r'.*\S.*', 'a non-empty path or null')
    size = integer(SIZE_MIN, SIZE_MAX)
    count = integer(1, 10 ** 9)
    return {
        'method': choice(*method_names()), 'seed': integer(0), 'init_from': path,
        'val_pairs': path,
        'model.backbone': choice(*BACKBONES), 'model.trunk': choice(*TRUNKS),
        'model.descriptor_dim': integer(1, 4096), 'model.pretrained': flag(),
        'model.head': choice(*HEADS), 'model.head_hidden': integer(1, 4096),
        'model.head_init': choice('pca', 'random'), 'model.head_init_images': count,
        'data.root': path, 'data.height': size, 'data.width': size,
        'data.num_keypoints': integer(1, 10 ** 6), 'data.keypoints': choice(*KEYPOINT_MODES),
        'data.foreground.share': real(0, 1), 'data.foreground.threshold': real(0, 255, True),
        'data.foreground.max_frames': count, 'data.foreground.cell_fraction': real(0, 1, True),
        'data.foreground.paste_background': real(0, 1), 'data.verify_images': flag(),
        'data.num_workers': integer(0, 256),
        'loss.tau': real(0, 1, low_open=True), 'loss.quantile': real(0, 1, low_open=True),
        'loss.lambda_iv': real(0), 'loss.use_quantile_drop': flag(),
        'loss.use_variance_scaling': flag(), 'loss.sanity_b_from_a': flag(),
        'optim.lr': real(0, 1, low_open=True), 'optim.trunk': choice(*TRUNK_MODES),
        'optim.trunk_lr_scale': real(0), 'optim.weight_decay': real(0), 'optim.grad_clip': real(0),
        'train.steps': count, 'train.batch_size': integer(1, 4096), 'train.augment_a': flag(),
        'train.cache_trunk_features': flag(), 'train.keep_best': flag(),
        'train.instruments': flag(), 'train.channels_last': flag(),
        'train.device': text(r'auto|' + DEVICE.pattern, 'auto | ' + DEVICE.hint),
        'train.threads': integer(0, 1024), 'train.log_every': count,
        'train.image_every': integer(0), 'train.checkpoint_every': count,
        'train.eval_every': count, 'train.eval_max_pairs': integer(0),
        'train.eval_scale': real(0.25, 4), 'train.progress': flag(),
    }


#: Keys that may be null (``model.trunk``: the backbone's default trunk).
NULLABLE = ('init_from', 'val_pairs', 'model.trunk', 'data.root')


def validate(cfg: dict) -> None:
    """
    Check every value the trainer relies on; raise a one-line ConfigError naming the key.

    NaN, inf, booleans where numbers belong, out-of-range sizes and unknown choices are refused
    (``ccl_perception.validation`` limits, :data:`SIZE_MIN`..:data:`SIZE_MAX` pixels in steps of
    :data:`SIZE_STEP`), and so are the combinations that cannot train.
    """
    for key, limit in _limits().items():
        section, _, name = key.rpartition('.')
        node = cfg
        for part in section.split('.') if section else ():
            node = node[part]
        if name not in node or (key in NULLABLE and node[name] is None):
            continue
        try:
            limit.check(key, node[name])
        except ValueError as exc:
            raise ConfigError(str(exc)) from None
    data, train = cfg['data'], cfg['train']
    for key in ('height', 'width'):
        if data[key] % SIZE_STEP:
            raise ConfigError(f'data.{key} = {data[key]!r} is not allowed: must be a multiple of '
                              f'{SIZE_STEP} in [{SIZE_MIN}, {SIZE_MAX}]')
    if not (train['amp'] == 'auto' or isinstance(train['amp'], bool)):
        raise ConfigError(f'train.amp = {train["amp"]!r} is not allowed: must be auto, true or '
                          'false')
    if data['foreground']['paste_background'] > 0 and data['keypoints'] != 'foreground':
        raise ConfigError('data.foreground.paste_background needs data.keypoints=foreground '
                          '(it pastes behind the estimated foreground)')
    from .methods import get_method
    if get_method(cfg['method']).rendered_pairs and not data.get('root'):
        raise ConfigError(f'method "{cfg["method"]}" needs data.root: a rendered dataset with '
                          'depth and cameras')


class View:
    """
    Read-only attribute access to a config mapping: ``View(cfg).train.steps``.

    A nested mapping comes back as a ``View`` (``dict(view)`` copies it out, e.g. the
    ``model`` section for ``build_model``); an unknown key is an ``AttributeError`` naming it.
    """

    __slots__ = ('_data', '_where')

    def __init__(self, data: dict, where: str = ''):
        object.__setattr__(self, '_data', data)
        object.__setattr__(self, '_where', where)

    def __getattr__(self, key):
        try:
            value = self._data[key]
        except KeyError:
            raise AttributeError(f'config has no key "{self._where}{key}"') from None
        return View(value, f'{self._where}{key}.') if isinstance(value, dict) else value

    def __setattr__(self, key, value):
        raise AttributeError('a config View is read-only')

    def keys(self):
        """Return the keys of the mapping (so ``dict(view)`` works)."""
        return self._data.keys()

    def __getitem__(self, key):
        return copy.deepcopy(self._data[key])

    def __iter__(self):
        return iter(self._data)


def dump_config(cfg: dict) -> str:
    """Return the config as YAML text (stored next to checkpoints, logged to TensorBoard)."""
    return yaml.safe_dump(cfg, sort_keys=False)
