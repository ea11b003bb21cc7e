"""ament_pep257 (docstring conventions of ROS 2) over every Python file."""
import os

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PATHS = ['ccl_perception', 'test', 'training', 'launch', 'setup.py']


@pytest.mark.linter
@pytest.mark.pep257
def test_pep257():
    main = pytest.importorskip('ament_pep257.main').main
    rc = main(argv=[os.path.join(ROOT, p) for p in PATHS])
    assert rc == 0, 'Found code style errors / warnings'
