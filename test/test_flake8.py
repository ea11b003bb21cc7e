"""ament_flake8 with the ROS 2 configuration (as ros2/demos runs it) over every Python file."""
import os

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PATHS = ['ccl_perception', 'test', 'training', 'launch', 'setup.py']


@pytest.mark.flake8
@pytest.mark.linter
def test_flake8():
    main_with_errors = pytest.importorskip('ament_flake8.main').main_with_errors
    rc, errors = main_with_errors(argv=[os.path.join(ROOT, p) for p in PATHS])
    assert rc == 0, 'Found %d code style errors / warnings:\n' % len(errors) + '\n'.join(errors)
