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

"""Image-folder pairs, keypoint sampling and config merging of the trainer."""
import logging
from pathlib import Path

from ccl_perception.learning.config import ConfigError, load_config, merge, parse_override
from ccl_perception.learning.dataset import DatasetError, ImagePairs, read_rgb, scan_images
from ccl_perception.learning.keypoints import grid_size, sample_grid_keypoints
from ccl_perception.learning.synthetic import write_shape_images
import numpy as np
import pytest
import torch

CONFIGS = Path(__file__).resolve().parents[1] / 'training' / 'configs'


@pytest.fixture
def folder(tmp_path):
    write_shape_images(tmp_path / 'imgs', 5, height=48, width=80, seed=1)
    return tmp_path / 'imgs'


class TestScan:

    def test_finds_png_and_jpg_recursively(self, tmp_path):
        write_shape_images(tmp_path / 'a', 2, ext='.png')
        write_shape_images(tmp_path / 'a' / 'sub', 2, ext='.jpg')
        (tmp_path / 'a' / 'notes.txt').write_text('not an image')
        paths, skipped = scan_images(tmp_path / 'a')
        assert len(paths) == 4 and skipped == []
        assert sum(p.suffix == '.jpg' for p in paths) == 2

    def test_corrupt_image_is_skipped_counted_and_logged(self, folder, caplog):
        (folder / 'broken.png').write_bytes(b'\x89PNG\r\n\x1a\n this is not a png')
        (folder / 'empty.jpg').write_bytes(b'')
        with caplog.at_level(logging.WARNING):
            ds = ImagePairs(folder, 48, 80, batch_size=2, num_keypoints=10)
        assert len(ds.paths) == 5
        assert sorted(p.split('/')[-1] for p, _ in ds.skipped) == ['broken.png', 'empty.jpg']
        assert 'broken.png' in caplog.text

    def test_lazy_corrupt_image_is_replaced_and_counted(self, folder):
        (folder / 'img_000.png').write_bytes(b'garbage')
        ds = ImagePairs(folder, 48, 80, batch_size=4, num_keypoints=10, verify=False)
        assert len(ds.paths) == 5 and ds.skipped == []
        skipped = sum(ds[s]['skipped'] for s in range(10))
        assert skipped == 1  # found once, then remembered as bad
        assert ds.bad == {0}

    def test_empty_folder_is_a_clear_error(self, tmp_path):
        (tmp_path / 'empty').mkdir()
        with pytest.raises(DatasetError, match='no image files'):
            ImagePairs(tmp_path / 'empty', 48, 80, 2, 10)

    def test_only_corrupt_images_is_a_clear_error(self, tmp_path):
        (tmp_path / 'bad').mkdir()
        (tmp_path / 'bad' / 'x.png').write_bytes(b'nope')
        with pytest.raises(DatasetError, match='could be decoded'):
            scan_images(tmp_path / 'bad')

    def test_missing_folder_is_a_clear_error(self, tmp_path):
        with pytest.raises(DatasetError, match='not found'):
            scan_images(tmp_path / 'nope')


class TestReadRgb:

    def test_rgb_order_and_resize(self, tmp_path):
        import cv2
        img = np.zeros((20, 30, 3), np.uint8)
        img[..., 0] = 255  # blue in BGR
        cv2.imwrite(str(tmp_path / 'b.png'), img)
        rgb = read_rgb(tmp_path / 'b.png')
        assert rgb.shape == (20, 30, 3) and rgb[0, 0].tolist() == [0, 0, 255]
        assert read_rgb(tmp_path / 'b.png', (60, 10)).shape == (10, 60, 3)


class TestKeypoints:

    def test_grid_size_is_ceil(self):
        assert grid_size(240, 320) == (30, 40)
        assert grid_size(65, 97) == (9, 13)

    def test_unique_cells_inside_grid(self):
        kp = sample_grid_keypoints(np.random.default_rng(0), 3, 6, 12, 50)
        assert kp.shape == (3, 50, 2) and kp.dtype == np.float32
        assert kp[..., 0].min() >= 0 and kp[..., 0].max() <= 11
        assert kp[..., 1].min() >= 0 and kp[..., 1].max() <= 5
        for b in range(3):
            cells = kp[b, :, 1] * 12 + kp[b, :, 0]
            assert len(np.unique(cells)) == 50
        assert np.all(kp == np.round(kp))  # cell centres

    def test_all_cells_when_fewer_than_n(self):
        kp = sample_grid_keypoints(np.random.default_rng(0), 1, 2, 3, 500)
        assert kp.shape == (1, 6, 2)
        assert sorted(map(tuple, kp[0].tolist())) == [(x, y)
                                                      for x in (0.0, 1.0, 2.0) for y in (0.0, 1.0)]


class TestPairs:

    def test_batch_shapes_and_distinct_pairs(self, folder):
        ds = ImagePairs(folder, 48, 80, batch_size=3, num_keypoints=20)
        item = ds[0]
        assert item['image_a'].shape == (3, 3, 48, 80) and item['image_a'].dtype == torch.uint8
        assert item['image_b'].shape == (3, 3, 48, 80)
        assert item['kp_a'].shape == (3, 20, 2)
        for s in range(20):
            it = ds[s]
            assert bool((it['index_a'] != it['index_b']).all())

    def test_deterministic_per_step_and_rank(self, folder):
        ds0 = ImagePairs(folder, 48, 80, 2, 20, seed=3, rank=0)
        again = ImagePairs(folder, 48, 80, 2, 20, seed=3, rank=0)
        ds1 = ImagePairs(folder, 48, 80, 2, 20, seed=3, rank=1)
        assert torch.equal(ds0[7]['kp_a'], again[7]['kp_a'])
        assert torch.equal(ds0[7]['image_a'], again[7]['image_a'])
        assert not torch.equal(ds0[7]['kp_a'], ds1[7]['kp_a'])
        assert not torch.equal(ds0[7]['kp_a'], ds0[8]['kp_a'])

    def test_identical_view_skips_second_image(self, folder):
        item = ImagePairs(folder, 48, 80, 2, 20, load_b=False)[0]
        assert 'image_b' not in item and item['image_a'].shape == (2, 3, 48, 80)

    def test_pixels_come_from_the_named_file(self, folder):
        ds = ImagePairs(folder, 48, 80, 2, 20)
        item = ds[5]
        expected = read_rgb(ds.paths[int(item['index_a'][1])], (80, 48))
        assert torch.equal(item['image_a'][1].permute(1, 2, 0), torch.from_numpy(expected))


class TestConfig:

    def test_method_configs_merge_over_defaults(self):
        cfg = load_config(CONFIGS / 'ccl_iv.yaml', ['train.steps=7', 'optim.lr=1e-4'])
        assert cfg['method'] == 'ccl_iv' and cfg['loss']['lambda_iv'] == 0.1
        assert cfg['train']['steps'] == 7 and cfg['optim']['lr'] == pytest.approx(1e-4)
        assert cfg['loss']['tau'] == pytest.approx(0.03) and cfg['data']['num_keypoints'] == 500
        assert cfg['model']['descriptor_dim'] == 64 and cfg['train']['batch_size'] == 4

    def test_unknown_key_is_an_error(self):
        with pytest.raises(ConfigError, match='unknown config key "optim.learning_rate"'):
            load_config(None, ['optim.learning_rate=1'])

    def test_bad_values_are_errors(self):
        with pytest.raises(ConfigError, match='method'):
            load_config(None, ['method=dino'])
        with pytest.raises(ConfigError, match='quantile'):
            load_config(None, ['loss.quantile=0'])
        with pytest.raises(ConfigError, match='key.sub=value'):
            parse_override('train.steps')

    def test_merge_is_deep_and_free_form_for_empty_sections(self):
        base = {'a': {'x': 1, 'y': 2}, 'aug': {}}
        out = merge(base, {'a': {'y': 5}, 'aug': {'anything': 1}})
        assert out == {'a': {'x': 1, 'y': 5}, 'aug': {'anything': 1}}
        assert base == {'a': {'x': 1, 'y': 2}, 'aug': {}}


@pytest.fixture(scope='module')
def render(tmp_path_factory):
    from ccl_perception.learning.synthetic import write_plane_scene
    folder = tmp_path_factory.mktemp('render')
    write_plane_scene(
        folder,
        3,
        height=64,
        width=96,
        shift=0.05,
        camera_height=1.0,
        fov_y_deg=40.0)
    return folder


class TestRenderedPairs:
    """Exact correspondences of the supervised baseline on a plane seen by shifted cameras."""

    @pytest.mark.parametrize('height,width', [(64, 96), (32, 48)])
    def test_correspondence_is_the_hand_computed_shift(self, render, height, width):
        import math

        from ccl_perception.learning.supervised import RenderedPairs
        ds = RenderedPairs(render, height, width, batch_size=3, num_keypoints=40)
        fx = 0.5 * 64 / math.tan(math.radians(20.0))  # render focal length, pixels
        for step in range(3):
            item = ds[step]
            for b in range(3):
                ia, ib = int(item['index_a'][b]), int(item['index_b'][b])
                assert ia != ib
                valid = item['valid'][b]
                assert int(valid.sum()) >= 0.5 * valid.numel()
                # camera moves (ib - ia) * 5 cm along world x = image "up": points move down by
                # fx * dx / z render pixels = that * (height / 64) training pixels = / 8 grid cells
                expected = fx * (ib - ia) * 0.05 / 1.0 * (height / 64) / 8
                d = (item['kp_b'][b] - item['kp_a'][b])[valid]
                assert torch.allclose(d[:, 0], torch.zeros_like(d[:, 0]), atol=1e-4)
                assert torch.allclose(d[:, 1], torch.full_like(d[:, 1], expected), atol=1e-3)
                # points that would leave I_B are masked
                h = math.ceil(height / 8)
                moved = item['kp_a'][b][:, 1] + expected
                assert not bool(valid[(moved < -0.5) | (moved > h - 0.5)].any())

    def test_missing_frames_json_is_a_clear_error(self, tmp_path):
        from ccl_perception.learning.supervised import RenderedPairs
        write_shape_images(tmp_path / 'plain', 2)
        with pytest.raises(DatasetError, match='frames.json'):
            RenderedPairs(tmp_path / 'plain', 64, 96, 2, 10)
