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

"""SHA-256 of a rendered folder: decoded pixels, arrays and JSON bytes (not PNG encodings)."""
import hashlib
import os

import cv2
import numpy as np


def tree_digest(root: str) -> str:
    """
    Hex digest of every file under ``root`` (sorted relative paths and their content).

    PNGs count by their decoded pixels (so a libpng / zlib update does not change the digest),
    ``.npy`` by dtype, shape and values, anything else (JSON) byte by byte.
    """
    h = hashlib.sha256()
    files = sorted(os.path.relpath(os.path.join(d, f), root)
                   for d, _, names in os.walk(root) for f in names)
    for rel in files:
        path = os.path.join(root, rel)
        h.update(rel.replace(os.sep, '/').encode() + b'\0')
        if rel.endswith('.png'):
            a = cv2.imread(path, cv2.IMREAD_UNCHANGED)
        elif rel.endswith('.npy'):
            a = np.load(path, allow_pickle=False)
        else:
            with open(path, 'rb') as f:
                h.update(f.read())
            continue
        h.update(f'{a.dtype}{a.shape}'.encode() + np.ascontiguousarray(a).tobytes())
    return h.hexdigest()
