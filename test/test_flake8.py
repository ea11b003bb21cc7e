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
ament_flake8 with the ROS 2 configuration (as ros2/demos runs it).

Every file not listed in test/lint_pending.txt must be clean; every listed file must
still have findings (so a fixed file is taken off the list).
"""
import os

from lint_pending import pending, python_files, ROOT
import pytest


@pytest.mark.flake8
@pytest.mark.linter
def test_flake8():
    main_with_errors = pytest.importorskip('ament_flake8.main').main_with_errors
    todo = pending('flake8')
    files = [os.path.join(ROOT, f) for f in python_files() if f not in todo]
    rc, errors = main_with_errors(argv=files)
    assert rc == 0, 'Found %d code style errors / warnings:\n' % len(errors) + '\n'.join(errors)


@pytest.mark.flake8
@pytest.mark.linter
def test_flake8_pending_list_only_shrinks():
    main_with_errors = pytest.importorskip('ament_flake8.main').main_with_errors
    todo = sorted(pending('flake8'))
    assert set(todo) <= set(python_files()), 'lint_pending.txt names files that do not exist'
    _, errors = main_with_errors(argv=[os.path.join(ROOT, f) for f in todo])
    flagged = {os.path.relpath(os.path.join(ROOT, e.split(':')[0]), ROOT) for e in errors}
    clean = [f for f in todo if f not in flagged]
    assert clean == [], f'now clean, remove from test/lint_pending.txt: {clean}'
