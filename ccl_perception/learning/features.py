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
Descriptor maps of a step's views, with the frozen trunk's feature cache.

With a frozen trunk (``optim.trunk: frozen``) no gradient reaches it: its features are
computed without a graph, and those of un-augmented dataset images once per image
(``train.cache_trunk_features``); only the head runs through the (DDP-wrapped) model. Otherwise
the whole model runs on the views. Forward passes run under the run's
:class:`~ccl_perception.learning.precision.Precision`; the maps come back in float32.
"""

import torch


class Describer:
    """
    ``describe(views) -> [(B, D, h, w) float32 map per view]``.

    Args:
        model: the bare ``DescriptorNet`` (its ``trunk_mode`` decides the path).
        precision: the run's :class:`~ccl_perception.learning.precision.Precision`.
        device_type: ``cpu`` or ``cuda``.
        memory_format: ``torch.channels_last`` or ``torch.contiguous_format``.
        cache: keep the trunk features of un-augmented images (frozen trunk only).

    Attributes:
        cache: ``{dataset image index: (C, h, w) features}``, or None when not caching.
    """

    def __init__(self, model, precision, device_type: str, memory_format, cache: bool):
        self.model, self.precision, self.device_type = model, precision, device_type
        self.memory_format = memory_format
        self.cache = {} if (cache and model.trunk_mode == 'frozen') else None

    def _autocast(self):
        return self.precision.autocast(self.device_type)

    def trunk_features(self, images: torch.Tensor, indices) -> torch.Tensor:
        """
        Trunk features ``(B, C, h, w)`` of one view.

        Args:
            images: ``(B, 3, H, W)`` float [0, 1].
            indices: per item the dataset index of an un-augmented image (cached by it), or
                None; None for the whole view when no item is a dataset image.
        """
        images = images.contiguous(memory_format=self.memory_format)
        if self.cache is None or indices is None:
            with self._autocast():
                return self.model.trunk_features(images)
        missing = [k for k, i in enumerate(indices) if i is None or i not in self.cache]
        fresh = {}
        if missing:
            with torch.no_grad(), self._autocast():
                computed = self.model.trunk_features(images[missing])
            for k, feat in zip(missing, computed):
                fresh[k] = feat.detach().clone()
                if indices[k] is not None:  # an un-augmented dataset image: keep it
                    self.cache[indices[k]] = fresh[k]
        return torch.stack([fresh[k] if k in fresh else self.cache[i]
                            for k, i in enumerate(indices)])

    def __call__(self, views, net=None) -> list:
        """
        Descriptor maps of every view of ``views`` (a :class:`~.views.Views`).

        ``net``: the module to run (the DDP-wrapped model in training; default the bare one).
        """
        net = net or self.model
        if self.model.trunk_mode == 'frozen':
            with torch.no_grad():
                feats = torch.cat([self.trunk_features(v, idx)
                                   for v, idx in zip(views.images, views.indices)])
            with self._autocast():
                desc = net(features=feats.contiguous(memory_format=self.memory_format))
        else:
            images = torch.cat(views.images).contiguous(memory_format=self.memory_format)
            with self._autocast():
                desc = net(images)
        return list(desc.float().chunk(len(views.images)))
