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

"""evaluate_model on a hand-built case with known matches, and the CLI on a tiny rendered set."""
import json
import math

from ccl_perception.evaluation.evaluate import evaluate_model, match_keypoints
from ccl_perception.evaluation.pairs import save_pairs
import cv2
import numpy as np
import pytest
import torch

H, W, h, w = 48, 64, 6, 8


def _one_hot_map(shift_cells=(0, 0)):
    """(h*w, h, w) map: cell (i, j) holds e_k of the cell it shows in the unshifted image."""
    desc = torch.zeros(h * w, h, w)
    for i in range(h):
        for j in range(w):
            src = ((i - shift_cells[0]) % h) * w + (j - shift_cells[1]) % w
            desc[src, i, j] = 1.0
    return desc


def test_match_keypoints_finds_shifted_cells():
    kp = np.array([[8 * 2 + 3.5, 8 * 1 + 3.5], [8 * 4 + 3.5, 8 * 3 + 3.5]])
    pred = match_keypoints(_one_hot_map(), _one_hot_map((1, 2)), kp, (H, W), (H, W))
    # true match = kp + (16, 8) at a cell centre 8j+3.5: the argmax lands on pixel 8j+3 or 8j+4
    np.testing.assert_allclose(np.abs(pred - (kp + [16, 8])), 0.5)
    pred = match_keypoints(_one_hot_map(), _one_hot_map((1, 2)), kp, (H, W), (H, W),
                           method='expectation', tau=0.01)
    np.testing.assert_allclose(pred, kp + [16, 8], atol=0.6)
    with pytest.raises(ValueError, match='method'):
        match_keypoints(_one_hot_map(), _one_hot_map(), kp, (H, W), (H, W), method='nearest')


def test_evaluate_model_hand_computed(tmp_path):
    rng = np.random.default_rng(0)
    img1 = rng.integers(0, 256, (H, W, 3), dtype=np.uint8)
    img2 = np.roll(img1, shift=(8, 16), axis=(0, 1))
    (tmp_path / 'images').mkdir()
    cv2.imwrite(str(tmp_path / 'images' / 'a.png'), img1)
    cv2.imwrite(str(tmp_path / 'images' / 'b.png'), img2)
    maps = {cv2.cvtColor(img1, cv2.COLOR_BGR2RGB).tobytes(): _one_hot_map(),
            cv2.cvtColor(img2, cv2.COLOR_BGR2RGB).tobytes(): _one_hot_map((1, 2))}

    def extractor(rgb):
        return maps[rgb.tobytes()]

    # interior cells whose matches are interior too: bilinear sampling and the softmax heatmap
    # are then symmetric around the cell centre
    near = [[8 * j + 3.5, 8 * i + 3.5] for i, j in ((1, 1), (2, 3), (2, 2))]
    far = [[8 * 3 + 3.5, 8 * 3 + 3.5], [8 * 3 + 3.5, 8 * 1 + 3.5]]
    shift = np.array([16.0, 8.0])
    images = [
        {'file': 'images/a.png', 'objects': {
            'near': {'keypoints': near, 'visible': [True] * 3},
            'far': {'keypoints': far, 'visible': [True] * 2}}},
        {'file': 'images/b.png', 'objects': {
            'near': {'keypoints': (np.array(near) + shift).tolist(), 'visible': [True] * 3},
            # annotated 12.5 px to the right of the true match
            'far': {'keypoints': (np.array(far) + shift + [12.5, 0]).tolist(),
                    'visible': [True] * 2}}},
    ]
    path = tmp_path / 'pairs.json'
    save_pairs(str(path), images, [{'image_1': 0, 'image_2': 1}],
               {'near': {'split': 'seen'}, 'far': {'split': 'unseen'}})
    # expectation of a sharp softmax: the exact (symmetric) cell centre, so errors are 0 and 12.5
    res = evaluate_model(extractor, str(path), method='expectation', tau=0.01, progress=False)
    e_near, e_far = 0.0, 12.5
    assert res['num_pairs'] == 1 and res['num_keypoints'] == 5
    assert res['pck'] == pytest.approx({'3': 0.6, '5': 0.6, '10': 0.6, '25': 1.0, '50': 1.0})
    assert res['mean_px_error'] == pytest.approx((3 * e_near + 2 * e_far) / 5, abs=1e-3)
    assert res['norm_mean_px_error'] == pytest.approx(
        (3 * e_near + 2 * e_far) / 5 / math.hypot(W, H), abs=1e-4)
    assert res['per_object']['near']['auc'] == pytest.approx(1.0)
    assert res['per_object']['far']['auc'] == pytest.approx(38 / 50)  # PCK@t = 1 for t >= 13
    assert res['per_split']['seen']['pck']['3'] == 1.0
    assert res['per_split']['unseen']['pck']['3'] == 0.0
    assert res['pck_curve']['12'] == pytest.approx(
        0.6) and res['pck_curve']['13'] == pytest.approx(1.0)
    # paper's best match: 0.5 px ties
    argmax = evaluate_model(extractor, str(path), progress=False)
    assert argmax['per_object']['near']['mean_px_error'] == pytest.approx(math.sqrt(0.5))


def test_cli_pretrained_baseline_on_tiny_render(tmp_path):
    pytest.importorskip('pybullet')
    from ccl_perception.sim.dataset import render_evaluation_set
    from training.evaluate import main  # noqa: F401  (training/ is a folder of scripts)
    render_evaluation_set(str(tmp_path / 'eval'), {
        'n_scenes': 2, 'views_per_scene': 2, 'width': 160, 'height': 120, 'n_seen_objects': 2,
        'n_unseen_objects': 2, 'objects_per_scene': 4, 'settle_steps': 60,
        'keypoints_per_object': 6},
        progress=False)
    torch.set_num_threads(1)
    out = tmp_path / 'res.json'
    assert main(['--baseline', 'pretrained', '--pairs', str(tmp_path / 'eval' / 'pairs.json'),
                 '--json', str(out)]) == 0
    res = json.loads(out.read_text())
    assert set(res['pck']) == {'3', '5', '10', '25', '50'}
    assert 0.0 <= res['auc'] <= 1.0 and res['num_pairs'] > 0
    assert (tmp_path / 'res.md').read_text().startswith('## pretrained')
    assert (tmp_path / 'res_pck.png').stat().st_size > 1000


def _reference_match(desc_1, desc_2, kp_1, size_1, size_2, method, tau):
    """Match the straightforward per-pair way: upsample both maps, sample, full cosine heatmap."""
    from ccl_perception.correspondence import (cosine_heatmap, heatmap_softmax,
                                               sample_descriptors, spatial_expectation)
    from ccl_perception.model import upsample_descriptors
    up_1 = upsample_descriptors(desc_1[None], size_1)
    up_2 = upsample_descriptors(desc_2[None], size_2)
    query = sample_descriptors(up_1, torch.as_tensor(kp_1.astype(np.float32)).reshape(1, -1, 2))
    sim = cosine_heatmap(query, up_2)
    if method == 'argmax':
        idx = sim.flatten(2).argmax(dim=-1)[0]
        return torch.stack([idx % size_2[1], idx // size_2[1]],
                           dim=-1).float().numpy().astype(float)
    return spatial_expectation(heatmap_softmax(sim, tau))[0].numpy().astype(float)


@pytest.mark.parametrize('method', ['argmax', 'expectation'])
def test_fast_path_equals_straightforward_per_pair(tmp_path, method):
    """predict_pairs (maps computed once per image) == per-pair upsampling, bit for bit."""
    from ccl_perception.evaluation.evaluate import predict_pairs
    from ccl_perception.evaluation.pairs import load_pairs
    rng = np.random.default_rng(1)
    gen = torch.Generator().manual_seed(1)
    (tmp_path / 'images').mkdir()
    size = (43, 61)  # not multiples of 8: maps of 6 x 8 cells, cropped after upsampling
    maps, images = {}, []
    for n in range(3):
        img = rng.integers(0, 256, size + (3,), dtype=np.uint8)
        cv2.imwrite(str(tmp_path / 'images' / f'{n}.png'), img)
        maps[cv2.cvtColor(img, cv2.COLOR_BGR2RGB).tobytes()] = torch.randn(5, 6, 8, generator=gen)
        objects = {}
        for name in ('a', 'b'):
            kp = rng.uniform([-0.5, -0.5], [size[1] - 0.5, size[0] - 0.5], (7, 2))
            objects[name] = {'keypoints': kp.tolist(), 'visible': (rng.random(7) < 0.8).tolist()}
        images.append({'file': f'images/{n}.png', 'objects': objects})
    pairs = [{'image_1': a, 'image_2': b} for a, b in ((0, 1), (1, 2), (0, 2), (2, 0), (0, 1))]
    path = tmp_path / 'pairs.json'
    save_pairs(str(path), images, pairs, {'a': {'split': 'seen'}, 'b': {'split': 'unseen'}})
    pf = load_pairs(str(path))

    def extractor(rgb):
        return maps[rgb.tobytes()]

    fast = predict_pairs(extractor, pf, pf.pairs, method, tau=0.05, progress=False)
    assert len(fast) == 5 and all(entry is not None for entry in fast)
    for pair, (kps, pred, size_2) in zip(pf.pairs, fast):
        assert size_2 == size
        kp_1 = np.concatenate([v[0] for v in kps.values()])
        d1 = maps[cv2.cvtColor(cv2.imread(pf.image_path(pair['image_1'])),
                               cv2.COLOR_BGR2RGB).tobytes()]
        d2 = maps[cv2.cvtColor(cv2.imread(pf.image_path(pair['image_2'])),
                               cv2.COLOR_BGR2RGB).tobytes()]
        ref = _reference_match(d1, d2, kp_1, size, size, method, 0.05)
        assert pred.shape == (len(kp_1), 2)
        assert np.array_equal(pred, ref)
        assert np.array_equal(match_keypoints(d1, d2, kp_1, size, size, method, tau=0.05), ref)
    # evaluate_model aggregates exactly those (== reference) predictions
    res = evaluate_model(extractor, str(path), method=method, tau=0.05, progress=False)
    errors = np.concatenate([
        np.linalg.norm(pred - np.concatenate([v[1] for v in kps.values()]), axis=1)
        for kps, pred, _ in fast])
    assert res['num_keypoints'] == errors.size
    assert res['pck_curve']['50'] == pytest.approx(float(np.mean(errors <= 50)))
    assert res['pck_curve']['5'] == pytest.approx(float(np.mean(errors <= 5)))


def test_evaluate_refuses_wrong_declared_size_and_outside_keypoints(tmp_path):
    """Ground truth is checked against the decoded image, not trusted."""
    (tmp_path / 'images').mkdir()
    img = np.zeros((H, W, 3), np.uint8)
    for n in 'ab':
        cv2.imwrite(str(tmp_path / 'images' / f'{n}.png'), img)
    kp = {'keypoints': [[10.0, 10.0]], 'visible': [True]}
    images = [{'file': 'images/a.png', 'width': W, 'height': H + 1, 'objects': {'o': kp}},
              {'file': 'images/b.png',
               'objects': {'o': {'keypoints': [[W + 3.0, 10.0]], 'visible': [True]}}}]
    path = tmp_path / 'pairs.json'
    save_pairs(str(path), images, [{'image_1': 0, 'image_2': 1}])

    def extractor(rgb):
        return torch.ones(4, h, w)
    with pytest.raises(ValueError, match=r"images\[0\] 'images/a.png' is 64x48 px "
                                         r'but the pairs file declares 64x49'):
        evaluate_model(extractor, str(path), progress=False)
    images[0]['height'] = H
    save_pairs(str(path), images, [{'image_1': 0, 'image_2': 1}])
    with pytest.raises(ValueError, match=r"images\[1\] 'images/b.png': visible keypoint 0 of 'o' "
                                         r'at \(67, 10\) is outside the 64x48 image'):
        evaluate_model(extractor, str(path), progress=False)


def test_full_resolution_at_twice_the_size_averages_2x2_blocks():
    """A map of a 2x-resized image, brought back: pixel (x, y) reads work pixels 2x..2x+1."""
    from ccl_perception.evaluation.evaluate import full_resolution
    from ccl_perception.model import upsample_descriptors
    torch.manual_seed(0)
    desc = torch.nn.functional.normalize(torch.randn(4, 6, 8), dim=0)  # work size 48x64
    up_work = upsample_descriptors(desc[None], (48, 64))[0]
    out = full_resolution(desc, (48, 64), (24, 32))[0]
    assert out.shape == (4, 24, 32)
    for y, x in ((0, 0), (5, 7), (23, 31), (11, 20)):
        block = up_work[:, 2 * y:2 * y + 2, 2 * x:2 * x + 2].mean(dim=(1, 2))
        assert torch.allclose(out[:, y, x], block / block.norm(), atol=1e-5)
    # the native size is the plain upsampling
    assert torch.equal(full_resolution(desc, (48, 64), (48, 64)), up_work[None])


def test_evaluate_model_input_size(tmp_path):
    """input_size runs the network on resized images; native size = the default, exactly."""
    rng = np.random.default_rng(1)
    img1 = rng.integers(0, 256, (H, W, 3), dtype=np.uint8)
    (tmp_path / 'a.png').write_bytes(cv2.imencode('.png', img1)[1].tobytes())
    kp = [[19.0, 11.0], [44.0, 35.0]]  # pixel centres: the query is that pixel's descriptor
    images = [{'file': 'a.png', 'objects': {'o': {'keypoints': kp, 'visible': [True] * 2}}}] * 2
    path = tmp_path / 'pairs.json'
    save_pairs(str(path), images, [{'image_1': 0, 'image_2': 1}], {'o': {'split': 'seen'}})
    seen = []

    def extractor(rgb):  # 3-D descriptors: the mean colour of each 8x8 cell, normalised
        seen.append(rgb.shape)
        cells = torch.from_numpy(rgb).float().permute(2, 0, 1)[None]
        pooled = torch.nn.functional.avg_pool2d(cells, 8, ceil_mode=True)[0]
        return torch.nn.functional.normalize(pooled + 1.0, dim=0)

    native = evaluate_model(extractor, str(path), progress=False)
    assert set(seen) == {(H, W, 3)}
    same = evaluate_model(extractor, str(path), progress=False, input_size=(W, H))
    assert same['pck'] == native['pck'] and same['mean_px_error'] == native['mean_px_error']
    seen.clear()
    double = evaluate_model(extractor, str(path), progress=False, input_size=(2 * W, 2 * H))
    assert set(seen) == {(2 * H, 2 * W, 3)}
    # the image matched against itself: each keypoint finds its own pixel (cosine 1)
    assert native['mean_px_error'] == 0.0 and double['mean_px_error'] == 0.0


def test_cli_input_size_errors(capsys):
    from training.evaluate import main  # noqa: F401  (training/ is a folder of scripts)
    for bad in ('abc', '0x0', '640x'):
        assert main(['--baseline', 'pretrained', '--input-size', bad,
                     '--pairs', 'missing.json']) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and '--input-size' in err[0]
