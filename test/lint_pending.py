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

"""The files each ament linter still flags (test/lint_pending.txt) and the files it checks."""
import glob
import os

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def python_files():
    """Every Python source file of the package, its tests, CLIs and launch file (relative)."""
    files = glob.glob(os.path.join(ROOT, 'ccl_perception', '**', '*.py'), recursive=True)
    for pattern in ('test/*.py', 'training/*.py', 'launch/*.py', 'setup.py'):
        files += glob.glob(os.path.join(ROOT, pattern))
    return sorted(os.path.relpath(f, ROOT) for f in files)


def pending(linter: str) -> set:
    """Paths listed for ``linter`` in test/lint_pending.txt."""
    with open(os.path.join(ROOT, 'test', 'lint_pending.txt')) as f:
        rows = [line.split() for line in f if line.strip() and not line.startswith('#')]
    return {path for name, path in rows if name == linter}
