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
Descriptor extraction for a single RGB image, with an eager-PyTorch or ONNX Runtime backend.

``DescriptorExtractor(model_or_checkpoint)(rgb)`` takes an (H, W, 3) uint8 RGB numpy image and
returns the (D, ceil(H/8), ceil(W/8)) unit descriptor map at 1/8 resolution (grid convention
of ``ccl_perception.correspondence``). ``export_onnx`` writes the same network as an ONNX
graph (input ``images`` float32 (B, 3, H, W) in [0, 1], output ``descriptors``; batch,
height and width dynamic) and stores the model identity in the ONNX metadata, so the
extractor refuses an ONNX file that does not belong to its checkpoint.
"""
import os
import warnings

import numpy as np
import torch

from .checkpoint import load_checkpoint, model_from_checkpoint, model_identity, training_tau
from .model import DescriptorNet, STRIDE
from .model_settings import (BACKEND, compose_identity, DEFAULT_BACKEND, DEFAULT_DEVICE,
                             DEFAULT_DOWNSCALE, DOWNSCALE)

IDENTITY_KEY = 'ccl_model_identity'
INPUT_NAME = 'images'
OUTPUT_NAME = 'descriptors'


def _check_rgb(rgb) -> None:
    """Raise ``ValueError`` unless ``rgb`` is a non-empty (H, W, 3) uint8 numpy array."""
    if not isinstance(rgb, np.ndarray):
        raise ValueError(f'rgb must be a numpy array, got {type(rgb).__name__}')
    if rgb.ndim != 3 or rgb.shape[2] != 3 or rgb.shape[0] == 0 or rgb.shape[1] == 0:
        raise ValueError(f'rgb must have shape (H, W, 3), got {rgb.shape}')
    if rgb.dtype != np.uint8:
        raise ValueError(f'rgb must be uint8 [0, 255], got {rgb.dtype}')


def _rgb_to_tensor(rgb: np.ndarray) -> torch.Tensor:
    """(H, W, 3) uint8 RGB -> (1, 3, H, W) float32 in [0, 1]."""
    _check_rgb(rgb)
    tensor = torch.from_numpy(np.ascontiguousarray(rgb)).permute(2, 0, 1).unsqueeze(0)
    return tensor.float().div_(255.0)


def _rgb_to_array(rgb: np.ndarray) -> np.ndarray:
    """
    (H, W, 3) uint8 RGB -> (1, 3, H, W) float32 in [0, 1], in numpy (the ONNX backend's input).

    The same values as :func:`_rgb_to_tensor` (a float32 division by 255), without a torch
    operation: small torch operations wait for torch's thread pool, which on a loaded machine
    costs milliseconds each.
    """
    _check_rgb(rgb)
    chw = np.ascontiguousarray(rgb.transpose(2, 0, 1)[None], dtype=np.float32)
    return np.divide(chw, np.float32(255.0), out=chw)


def export_onnx(model: DescriptorNet, path, height: int = 480, width: int = 640,
                opset_version: int = 17) -> str:
    """
    Export ``model`` (eval mode, CPU) to ONNX with TorchScript-based export (dynamo=False).

    Args:
        model: the descriptor network.
        path: output .onnx file.
        height, width: size of the example input used for tracing (any size works later).

    Returns:
        the path written. The graph maps float32 (B, 3, H, W) in [0, 1] to (B, D, ceil(H/8),
        ceil(W/8)); the metadata property ``ccl_model_identity`` holds ``model_identity``.
    """
    import onnx

    path = os.fspath(path)
    model = model.cpu().eval()
    example = torch.rand(1, 3, int(height), int(width))
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    dynamic = {INPUT_NAME: {0: 'batch', 2: 'height', 3: 'width'},
               OUTPUT_NAME: {0: 'batch', 2: 'grid_height', 3: 'grid_width'}}
    with torch.no_grad(), warnings.catch_warnings():
        # The TorchScript exporter is deprecated in favour of dynamo but is the one specified here.
        warnings.simplefilter('ignore', DeprecationWarning)
        torch.onnx.export(model, (example,), path, dynamo=False, opset_version=opset_version,
                          input_names=[INPUT_NAME], output_names=[OUTPUT_NAME],
                          dynamic_axes=dynamic)
    graph = onnx.load(path)
    entry = graph.metadata_props.add()
    entry.key, entry.value = IDENTITY_KEY, model_identity(model)
    onnx.save(graph, path)
    return path


def onnx_session(path, identity: str = None, threads: int = None):
    """
    Open an ONNX Runtime CPU session; check the stored model identity when given.

    ``threads`` sets ONNX Runtime's intra-op thread count (default: its own choice).

    Raises:
        ValueError: the file's ``ccl_model_identity`` differs from ``identity``.
        FileNotFoundError: no such file.
    """
    import onnxruntime as ort

    path = os.fspath(path)
    if not os.path.isfile(path):
        raise FileNotFoundError(f'ONNX model not found: {path}')
    options = ort.SessionOptions()
    if threads:
        options.intra_op_num_threads = int(threads)
    session = ort.InferenceSession(path, sess_options=options, providers=['CPUExecutionProvider'])
    stored = session.get_modelmeta().custom_metadata_map.get(IDENTITY_KEY)
    if identity is not None and stored != identity:
        raise ValueError(f'ONNX model {path} has identity {stored!r}, but the checkpoint is '
                         f'{identity!r}: re-export it with training/export_onnx.py')
    return session


def compare_onnx(model: DescriptorNet, path, height: int, width: int, seed: int = 0) -> float:
    """Max absolute difference between ONNX Runtime and PyTorch on a random image."""
    generator = torch.Generator().manual_seed(seed)
    image = torch.rand(1, 3, int(height), int(width), generator=generator)
    with torch.no_grad():
        reference = model.cpu().eval()(image).numpy()
    session = onnx_session(path)
    result = session.run([OUTPUT_NAME], {INPUT_NAME: image.numpy()})[0]
    if result.shape != reference.shape:
        raise ValueError(f'ONNX output shape {result.shape} != PyTorch {reference.shape}')
    return float(np.abs(result - reference).max())


def shrink(rgb: np.ndarray, factor: int) -> np.ndarray:
    """
    ``(H, W, 3)`` uint8 -> ``(H / factor, W / factor, 3)`` by area averaging.

    Raises:
        ValueError: H or W not divisible by ``factor`` (the cell geometry would not be exact).
    """
    import cv2
    rgb = np.asarray(rgb)
    if rgb.ndim != 3 or rgb.shape[0] % factor or rgb.shape[1] % factor:
        raise ValueError(f'image of shape {rgb.shape} cannot be shrunk {factor}x exactly '
                         f'(height and width must be divisible by {factor})')
    return cv2.resize(rgb, (rgb.shape[1] // factor, rgb.shape[0] // factor),
                      interpolation=cv2.INTER_AREA)


class DescriptorExtractor:
    """
    Dense descriptors of one RGB image.

    Args:
        model: a ``DescriptorNet`` or a checkpoint path (``load_model``).
        device: torch device for the eager backend (the ONNX backend runs on the CPU).
        backend: ``torch`` or ``onnx``.
        onnx_path: exported model (``export_onnx``); for ``backend='onnx'`` it defaults to
            the checkpoint path with the suffix ``.onnx``.
        features: ``head`` (the descriptors) or ``backbone`` (the trunk's own L2-normalised
            features: the pretrained-features baseline of the grasp benchmark).
        onnx_threads: ONNX Runtime's intra-op threads (default: its own choice, one per core).
        downscale: integer factor ``s``: images are shrunk ``s`` times (area interpolation)
            before the model, so a 640x480 camera runs a model trained at 320x240 at its
            training scale. The map then has ``ceil(H / (8 s))`` rows and behaves exactly
            like a stride-``8 s`` model on the camera image (cell centres at
            ``8 s i + (8 s - 1) / 2``; the camera size must be divisible by ``s``).

    Attributes:
        stride: ``8 * downscale`` camera pixels per descriptor cell; identity:
        ``model_identity`` of the weights (with ``/s`` appended when ``downscale = s > 1``,
        so a target made at another scale is refused); descriptor_dim: D;
        training_tau: the softmax temperature the checkpoint was trained with (None if
        the checkpoint does not say, or for an in-memory model).

    ``extractor(rgb)`` with rgb (H, W, 3) uint8 -> torch.Tensor (D, ceil(H/stride),
    ceil(W/stride)) float32 unit vectors (on ``device`` for the torch backend, on the CPU for
    onnx).
    """

    def __init__(self, model, device=DEFAULT_DEVICE, backend: str = DEFAULT_BACKEND,
                 onnx_path=None, downscale: int = DEFAULT_DOWNSCALE, features: str = 'head',
                 onnx_threads: int = None):
        BACKEND.check('backend', backend)
        if not isinstance(downscale, int):  # 2.0 is a config mistake here, not a factor
            raise ValueError(f'downscale must be an integer, got {downscale!r}')
        DOWNSCALE.check('downscale', downscale)
        if features not in ('head', 'backbone'):
            raise ValueError(f"features must be 'head' or 'backbone', got {features!r}")
        if features == 'backbone' and backend != 'torch':
            raise ValueError("features='backbone' (the pretrained-features baseline) "
                             "needs backend='torch'")
        self.features = features
        self.downscale = downscale
        self.stride = STRIDE * downscale
        self.training_tau = None
        if isinstance(model, DescriptorNet):
            self.model = model.to(device).eval()
            default_onnx = None
        elif isinstance(model, (str, os.PathLike)):
            data = load_checkpoint(model)
            self.model = model_from_checkpoint(data, model, device=device)
            self.training_tau = training_tau(data)
            default_onnx = os.path.splitext(os.fspath(model))[0] + '.onnx'
        else:
            raise ValueError('model must be a DescriptorNet or a checkpoint path, got '
                             f'{type(model).__name__}')
        self.device = torch.device(device)
        # NHWC is ~1.5x faster for the depthwise convolutions of efficientnet_lite0 on the CPU.
        self.model = self.model.to(memory_format=torch.channels_last)
        self.backend = backend
        weights = model_identity(self.model)
        self.identity = compose_identity(weights + (':backbone' if features == 'backbone' else ''),
                                         downscale)
        self.descriptor_dim = (int(self.model.feature_dim) if features == 'backbone'
                               else int(self.model.config['descriptor_dim']))
        self.session = None
        if backend == 'onnx':
            onnx_path = onnx_path or default_onnx
            if onnx_path is None:
                raise ValueError("backend='onnx' with an in-memory model needs onnx_path")
            # the file holds the weights: their identity, whatever the input scale
            self.session = onnx_session(onnx_path, identity=weights,
                                        threads=onnx_threads)

    def __call__(self, rgb: np.ndarray) -> torch.Tensor:
        if self.downscale > 1:
            rgb = shrink(rgb, self.downscale)
        if self.session is not None:
            out = self.session.run([OUTPUT_NAME], {INPUT_NAME: _rgb_to_array(rgb)})[0]
            return torch.from_numpy(out[0])
        image = _rgb_to_tensor(rgb)
        with torch.inference_mode():
            image = image.to(self.device).contiguous(memory_format=torch.channels_last)
            if self.features == 'backbone':
                return self.model.backbone_features(image)[0].contiguous()
            return self.model(image)[0].contiguous()
