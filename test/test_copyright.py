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
Every source file starts with the copyright line and the Apache-2.0 licence header.

ament_copyright is not on the Python package registry; this checks what it checks for the
``apache2`` licence: a ``Copyright <year> <holder>`` line followed by the standard header,
matching package.xml's ``<license>`` and the LICENSE file.
"""
import glob
import os
import re

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
HEADER = """#
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
COPYRIGHT = re.compile(r'^# Copyright (19|20)\d\d(-(19|20)\d\d)? \S.*\n')


def source_files():
    files = glob.glob(os.path.join(ROOT, 'ccl_perception', '**', '*.py'), recursive=True)
    files += glob.glob(os.path.join(ROOT, 'test', '*.py'))
    files += glob.glob(os.path.join(ROOT, 'training', '*.py'))
    files += glob.glob(os.path.join(ROOT, 'training', '*.sh'))
    files += glob.glob(os.path.join(ROOT, 'launch', '*.py'))
    files += glob.glob(os.path.join(ROOT, 'scripts', '*.sh'))
    return sorted(files + [os.path.join(ROOT, 'setup.py')])


def has_header(path: str) -> bool:
    with open(path) as f:
        text = f.read()
    if text.startswith('#!'):
        text = text.split('\n', 1)[1]
    m = COPYRIGHT.match(text)
    return m is not None and text[m.end():].startswith(HEADER)


@pytest.mark.copyright
@pytest.mark.linter
def test_copyright():
    missing = [os.path.relpath(p, ROOT) for p in source_files() if not has_header(p)]
    assert missing == [], f'{len(missing)} file(s) without the copyright + Apache-2.0 header'


def test_the_check_can_fail(tmp_path):
    good = tmp_path / 'good.py'
    good.write_text('# Copyright 2026 someone\n' + HEADER + '"""Doc."""\n')
    bad = tmp_path / 'bad.py'
    bad.write_text('# Copyright 2026 someone\n# Licensed under the MIT licence\n')
    assert has_header(str(good)) and not has_header(str(bad))
