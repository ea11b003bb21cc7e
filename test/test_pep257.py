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
ament_pep257 (the 'ament' docstring convention of ROS 2).

Every file not listed in test/lint_pending.txt must be clean; every listed file must
still have findings (so a fixed file is taken off the list).
"""
import contextlib
import io
import os

from lint_pending import pending, python_files, ROOT
import pytest


def pep257(files) -> int:
    main = pytest.importorskip('ament_pep257.main').main
    with contextlib.redirect_stdout(io.StringIO()):
        return main(argv=[os.path.join(ROOT, f) for f in files])


@pytest.mark.linter
@pytest.mark.pep257
def test_pep257():
    todo = pending('pep257')
    files = [f for f in python_files() if f not in todo]
    main = pytest.importorskip('ament_pep257.main').main
    rc = main(argv=[os.path.join(ROOT, f) for f in files])
    assert rc == 0, 'Found code style errors / warnings'


@pytest.mark.linter
@pytest.mark.pep257
def test_pep257_pending_list_only_shrinks():
    todo = sorted(pending('pep257'))
    assert set(todo) <= set(python_files()), 'lint_pending.txt names files that do not exist'
    clean = [f for f in todo if pep257([f]) == 0]
    assert clean == [], f'now clean, remove from test/lint_pending.txt: {clean}'
