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
ament_pep257 (the 'ament' docstring convention of ROS 2), with Google-style sections.

The house style (STYLE.md) writes ``Args:`` / ``Returns:`` / ``Raises:`` sections, Google
style. The 'ament' convention is an ignore list, so it keeps pydocstyle's numpy-only section
rules, which reject every Google section. Those three, and only those, are added to the
ignore list (``--add-ignore``, as ROS 2 packages with Google docstrings configure it):

* D406 'Section name should end with a newline': Google names end with a colon (``Args:``);
* D407 'Missing dashed underline after section': numpy's ``----------`` under the name;
* D413 'Missing blank line after last section': pydocstyle's google and numpy conventions
  both leave it out; a Google docstring closes right after its last section.

Every other rule of the 'ament' convention stays, including D213 (the summary starts on the
second line) and D417 (every argument described in ``Args:``).

Every file not listed in test/lint_pending.txt must be clean; every listed file must
still have findings (so a fixed file is taken off the list).
"""
import contextlib
import io
import os

from lint_pending import pending, python_files, ROOT
import pytest


#: The pydocstyle rules that only fit numpy-style sections (see the module docstring).
GOOGLE_SECTIONS_IGNORE = ['D406', 'D407', 'D413']


def argv(files) -> list:
    """ament_pep257's command line for ``files`` (paths relative to the package root)."""
    return [os.path.join(ROOT, f) for f in files] + ['--add-ignore'] + GOOGLE_SECTIONS_IGNORE


def pep257(files) -> int:
    main = pytest.importorskip('ament_pep257.main').main
    with contextlib.redirect_stdout(io.StringIO()):
        return main(argv=argv(files))


@pytest.mark.linter
@pytest.mark.pep257
def test_pep257():
    todo = pending('pep257')
    files = [f for f in python_files() if f not in todo]
    main = pytest.importorskip('ament_pep257.main').main
    rc = main(argv=argv(files))
    assert rc == 0, 'Found code style errors / warnings'


@pytest.mark.linter
@pytest.mark.pep257
def test_pep257_pending_list_only_shrinks():
    todo = sorted(pending('pep257'))
    assert set(todo) <= set(python_files()), 'lint_pending.txt names files that do not exist'
    clean = [f for f in todo if pep257([f]) == 0]
    assert clean == [], f'now clean, remove from test/lint_pending.txt: {clean}'
