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
Target files a user can damage or lose (issue 20, "Safety and data").

* saving over a target never loses the old one: ``make_target --out`` refuses an existing
  file without ``--force`` (and with it keeps ``<out>.bak``); ``TargetLibrary.save`` (the
  target_maker node's ``~/save_target``) keeps ``<name>.npz.bak``;
* a malformed ``.npz`` (random bytes, a truncated copy, a valid zip with fields of the wrong
  form) is skipped with a reason naming the file while the good targets load;
* an image larger than ``MAX_IMAGE_SIDE`` is refused from its header, before decoding;
* a model that gives NaN descriptors makes no target.

Scene: a tiny random resnet18 DescriptorNet (D=16) on a 64x48 image of random 8x8 blocks.
"""
import os
import struct
import subprocess
import sys
import zlib

from ccl_perception import targets as tg
from ccl_perception.image_header import image_size, MAX_IMAGE_SIDE
import cv2
import numpy as np
import pytest
import torch

H, W = 48, 64
PTS = [(11.5, 19.5), (35.5, 19.5), (27.5, 35.5)]


@pytest.fixture(scope='module')
def extractor():
    from ccl_perception.inference import DescriptorExtractor
    from ccl_perception.model import DescriptorNet
    torch.manual_seed(0)
    torch.set_num_threads(1)
    return DescriptorExtractor(DescriptorNet('resnet18', 16, pretrained=False))


@pytest.fixture(scope='module')
def rgb():
    rng = np.random.default_rng(0)
    return np.kron(rng.integers(0, 255, (H // 8, W // 8, 3)), np.ones((8, 8, 1))).astype(np.uint8)


@pytest.fixture(scope='module')
def good(extractor, rgb):
    return tg.make_target(extractor, rgb, PTS, 'mug')


# ------------------------------------------------------------------------ overwriting
@pytest.fixture()
def cli_files(tmp_path, rgb):
    from ccl_perception.checkpoint import save_checkpoint
    from ccl_perception.model import DescriptorNet
    torch.manual_seed(0)
    ck = save_checkpoint(str(tmp_path / 'ck.pt'), DescriptorNet('resnet18', 16,
                                                                pretrained=False))
    cv2.imwrite(str(tmp_path / 'ref.png'), rgb[:, :, ::-1])
    return {'ck': ck, 'image': str(tmp_path / 'ref.png'), 'out': str(tmp_path / 't' / 'mug.npz')}


def _make_target_argv(f, name='mug', *extra):
    return ['--checkpoint', f['ck'], '--image', f['image'], '--points', '11.5,19.5',
            '35.5,19.5', '--name', name, '--out', f['out'], *extra]


def test_make_target_refuses_to_overwrite_without_force(cli_files, capsys):
    f = cli_files
    assert tg.main(_make_target_argv(f, 'mug')) == 0
    first = open(f['out'], 'rb').read()
    capsys.readouterr()
    assert tg.main(_make_target_argv(f, 'cup')) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [f"make_target: error: --out '{f['out']}' exists; pass --force to replace it "
                   f"(the old file is then kept as {f['out']}.bak)"]
    assert open(f['out'], 'rb').read() == first and not os.path.exists(f['out'] + '.bak')
    # --force: replaced, the old file kept next to it
    assert tg.main(_make_target_argv(f, 'cup', '--force')) == 0
    assert 'the previous file is kept as' in capsys.readouterr().out
    assert tg.load_target(f['out']).name == 'cup'
    assert open(f['out'] + '.bak', 'rb').read() == first


def test_library_save_keeps_the_old_target_as_bak(good, tmp_path):
    lib = tg.TargetLibrary(str(tmp_path))
    path = lib.save(good)
    first = open(path, 'rb').read()
    again = tg.Target(**{**good.__dict__, 'descriptors': -good.descriptors})
    assert lib.save(again) == path
    assert open(path + '.bak', 'rb').read() == first
    np.testing.assert_array_equal(tg.load_target(path).descriptors, -good.descriptors)
    # the .bak is not a second 'mug' for the planner
    targets, errors = tg.load_library(str(tmp_path))
    assert list(targets) == ['mug'] and errors == {}


# ------------------------------------------------------------------ malformed target files
def _valid_fields(good):
    return {'format_version': np.int64(1), 'name': np.str_('bad'),
            'model_identity': np.str_(good.model_identity), 'descriptors': good.descriptors,
            'pixels': good.pixels, 'image_size': np.array([H, W])}


#: Valid zip files whose content is of the wrong form: (field, value, words of the reason).
MALFORMED_FIELDS = [
    ('image_size', np.int64(48), 'image_size must be 2'),
    ('image_size', np.array(['a', 'b']), 'image_size must be 2'),
    ('image_size', np.array([0, 64]), 'image_size [0, 64] must be positive'),
    ('format_version', np.array([1, 1]), 'format_version must be a scalar'),
    ('format_version', np.str_('one'), 'format_version must be a scalar'),
    ('descriptors', np.ones(3), 'descriptors must be any x any'),
    ('descriptors', np.array([['a', 'b'], ['c', 'd']]), 'descriptors must be any x any'),
    ('pixels', np.zeros(3), 'pixels must be 3 x 2'),
    ('pixels', np.zeros((2, 2)), 'pixels must be 3 x 2'),
    ('pixels', np.full((3, 2), np.nan), 'pixels must be finite'),
    ('name', np.ones(3), 'name must be a scalar'),
    ('axis_length', np.ones(3), 'axis_length must be a scalar'),
    ('points_3d', np.str_('x'), 'points_3d must be 3 x 3'),
    ('intrinsics', np.eye(4), 'intrinsics must be 3 x 3'),
]


@pytest.mark.parametrize('field,value,reason', MALFORMED_FIELDS)
def test_a_malformed_field_is_a_target_error_naming_the_file(good, tmp_path, field, value,
                                                             reason):
    path = tmp_path / 'bad.npz'
    np.savez(path, **{**_valid_fields(good), field: value})
    with pytest.raises(tg.TargetError) as info:
        tg.load_target(str(path))
    assert str(path) in str(info.value) and reason in str(info.value), str(info.value)


def broken_copies(good_path: str, folder) -> dict:
    """Write a random-bytes file, truncated copies and a malformed zip; return their names."""
    data = open(good_path, 'rb').read()
    rng = np.random.default_rng(0)
    files = {'random.npz': rng.integers(0, 256, 4000, dtype=np.uint8).tobytes(),
             'empty.npz': b'', 'half.npz': data[:len(data) // 2],
             'head.npz': data[:100], 'tail_cut.npz': data[:-10]}
    for name, content in files.items():
        (folder / name).write_bytes(content)
    return sorted(files)


def test_the_library_skips_every_broken_file_and_loads_the_good_one(good, tmp_path):
    good_path = str(tmp_path / 'good.npz')
    tg.save_target(good_path, good)
    bad = broken_copies(good_path, tmp_path)
    for i, (field, value, _) in enumerate(MALFORMED_FIELDS):
        np.savez(tmp_path / f'field_{i}.npz', **{**_valid_fields(good), field: value})
        bad.append(f'field_{i}.npz')
    targets, errors = tg.load_library(str(tmp_path), good.model_identity)
    assert list(targets) == ['mug']
    assert sorted(errors) == sorted(bad)
    for name, why in errors.items():
        assert name in why, why  # the reason names the file


def test_every_truncation_of_a_target_is_refused(good, tmp_path):
    path = tmp_path / 'good.npz'
    tg.save_target(str(path), good)
    data = path.read_bytes()
    cut = tmp_path / 'cut.npz'
    for n in range(0, len(data), 7):
        cut.write_bytes(data[:n])
        with pytest.raises(tg.TargetError):
            tg.load_target(str(cut))


# --------------------------------------------------------------------------- huge images
def black_png(path, width: int, height: int) -> None:
    """
    Write a valid all-black 8-bit grey PNG of ``width x height`` without holding it in memory.

    30000 x 30000 is ~1 MB on disk, 0.9 GB of pixels and 2.7 GB decoded as colour.
    """
    def chunk(kind, body):
        return (struct.pack('>I', len(body)) + kind + body
                + struct.pack('>I', zlib.crc32(kind + body) & 0xFFFFFFFF))
    ihdr = struct.pack('>IIBBBBB', width, height, 8, 0, 0, 0, 0)
    packer, row, data = zlib.compressobj(1), b'\0' * (1 + width), []
    for _ in range(height):  # filter byte 0 + a row of zeros, compressed as it goes
        data.append(packer.compress(row))
    data.append(packer.flush())
    with open(path, 'wb') as f:
        f.write(b'\x89PNG\r\n\x1a\n' + chunk(b'IHDR', ihdr) + chunk(b'IDAT', b''.join(data))
                + chunk(b'IEND', b''))


def test_image_size_reads_the_header(tmp_path):
    black_png(tmp_path / 'big.png', 30000, 30000)
    assert image_size(str(tmp_path / 'big.png')) == (30000, 30000)
    cv2.imwrite(str(tmp_path / 'small.jpg'), np.zeros((37, 53, 3), np.uint8))
    assert image_size(str(tmp_path / 'small.jpg')) == (53, 37)


def test_make_target_refuses_a_30000_px_png_before_decoding(cli_files, tmp_path):
    """In a fresh process: exit 2, one line naming the limit, and no gigabytes allocated."""
    black_png(tmp_path / 'huge.png', 30000, 30000)
    # peak RSS of this process's own memory (VmHWM; ru_maxrss would include the forked copy
    # of the test process before exec)
    code = ('import sys\n'
            'from ccl_perception.targets import main\n'
            'rc = main(sys.argv[1:])\n'
            'hwm = [ln for ln in open("/proc/self/status") if ln.startswith("VmHWM")][0]\n'
            'print(int(hwm.split()[1]) // 1024)\n'
            'sys.exit(rc)\n')
    argv = ['--checkpoint', cli_files['ck'], '--image', str(tmp_path / 'huge.png'),
            '--points', '1,1', '20,20', '--name', 'x', '--out', str(tmp_path / 'x.npz')]
    proc = subprocess.run([sys.executable, '-c', code, *argv], capture_output=True, text=True,
                          timeout=300, env=dict(os.environ, OMP_NUM_THREADS='1'))
    assert proc.returncode == 2, proc.stderr
    lines = [ln for ln in proc.stderr.splitlines() if ln.strip()]
    assert lines == [f"make_target: error: image '{tmp_path / 'huge.png'}' is 30000x30000 px: "
                     f'larger than the {MAX_IMAGE_SIDE}x{MAX_IMAGE_SIDE} limit (MAX_IMAGE_SIDE); '
                     'scale it down first'], proc.stderr
    assert int(proc.stdout.split()[-1]) < 1024, f'peak RSS {proc.stdout.split()[-1]} MiB'
    assert not (tmp_path / 'x.npz').exists()


def test_a_valid_image_over_the_limit_is_refused_and_one_at_it_is_read(tmp_path):
    from ccl_perception.image_io import ImageReadError, read_rgb
    cv2.imwrite(str(tmp_path / 'wide.png'), np.zeros((2, MAX_IMAGE_SIDE + 1, 3), np.uint8))
    with pytest.raises(ImageReadError, match=f'is {MAX_IMAGE_SIDE + 1}x2 px: larger than'):
        read_rgb(str(tmp_path / 'wide.png'))
    cv2.imwrite(str(tmp_path / 'edge.png'), np.zeros((2, MAX_IMAGE_SIDE, 3), np.uint8))
    assert read_rgb(str(tmp_path / 'edge.png')).shape == (2, MAX_IMAGE_SIDE, 3)
    cv2.imwrite(str(tmp_path / 'deep.png'), np.zeros((MAX_IMAGE_SIDE + 1, 2), np.uint16))
    with pytest.raises(ValueError, match='depth .* larger than'):
        tg.read_depth(str(tmp_path / 'deep.png'))
    np.save(tmp_path / 'deep.npy', np.zeros((2, MAX_IMAGE_SIDE + 1), np.float32))
    with pytest.raises(ValueError, match='depth .* larger than'):
        tg.read_depth(str(tmp_path / 'deep.npy'))


# ------------------------------------------------------------------------------ NaN model
def test_a_model_giving_nan_descriptors_makes_no_target(rgb):
    from ccl_perception.inference import DescriptorExtractor
    from ccl_perception.model import DescriptorNet
    torch.manual_seed(0)
    net = DescriptorNet('resnet18', 16, pretrained=False)
    with torch.no_grad():
        next(net.head.parameters()).fill_(float('nan'))
    with pytest.raises(ValueError, match=r'non-finite \(NaN/inf\) descriptors'):
        tg.make_target(DescriptorExtractor(net), rgb, PTS, 'nan')
