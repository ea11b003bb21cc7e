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
What the grasp planner's parameters select, and their validated changes (no ROS).

:class:`PlannerState` holds the pipeline config, the target library and the active
target. :meth:`PlannerState.apply` takes a dict of parameter changes, validates all of
them and commits all of them or none (raising ``ValueError`` with the reason), which is
exactly what the planner node's set-parameters callback needs: a rejected
``ros2 param set`` changes nothing. There is one config: the state's
:class:`~ccl_perception.grasp_pipeline.PipelineConfig` is the one its pipeline runs with, and
a change is validated once (:func:`~ccl_perception.grasp_pipeline.validate_config`).
"""

from typing import Optional

from ccl_perception import grasp_pipeline
from ccl_perception.targets import Target, TargetError, TargetLibrary


class PlannerState:
    """
    Pipeline config + pipeline + target library + active target of one planner.

    Args:
        extractor: the ``DescriptorExtractor`` the pipeline runs, or None when the model
            failed to load (then there is no pipeline and every target is refused with
            ``load_error``).
        config: pipeline knobs (merged over ``grasp_pipeline.DEFAULTS`` and validated).
        library: the :class:`~ccl_perception.targets.TargetLibrary` of ``target_dir``.
        load_error: why there is no model.

    Attributes:
        config: the validated :class:`~ccl_perception.grasp_pipeline.PipelineConfig`;
            ``pipeline.config`` is this same object.
        pipeline: the :class:`~ccl_perception.grasp_pipeline.GraspPipeline`, or None.
    """

    def __init__(self, extractor, config: dict, library: TargetLibrary, load_error: str = ''):
        self.config = grasp_pipeline.merge_config(config)
        self.pipeline = (None if extractor is None
                         else grasp_pipeline.GraspPipeline(extractor, self.config))
        self.library = library
        self.load_error = load_error
        self.target: Optional[Target] = None

    def resolve(self, spec: str, library: TargetLibrary = None) -> Optional[Target]:
        """Target named by ``spec`` (None for ``''``); ``TargetError`` with the reason."""
        if spec and self.pipeline is None:
            raise TargetError(self.load_error or 'no model loaded')
        return (library or self.library).resolve(spec)

    def apply(self, changes: dict) -> str:
        """
        Validate and commit parameter ``changes``; returns what changed (for the log).

        Keys: pipeline knobs, ``target_dir`` (re-reads the library; the directory must
        exist), ``target`` (resolved in the new library). Other keys are ignored.

        Raises:
            ValueError: (``TargetError`` is one) with the reason; nothing was changed.
        """
        knobs = {k: v for k, v in changes.items() if k in grasp_pipeline.DEFAULTS}
        config = (grasp_pipeline.validate_config({**self.config, **knobs}) if knobs
                  else self.config)
        library, target, notes = self.library, self.target, []
        if 'target_dir' in changes:
            library = TargetLibrary.open(changes['target_dir'], library.identity)
            notes.append(f'library {library.directory!r}: {", ".join(library.names) or "empty"}'
                         + ''.join(f'; {k} not loaded: {v}' for k, v in library.errors.items()))
        if 'target' in changes:
            target = self.resolve(changes['target'], library)
            notes.append(f'target {target.name!r}' if target is not None else 'target cleared')
        if self.pipeline is not None:
            self.pipeline.use(config)
        self.config, self.library, self.target = config, library, target
        return '; '.join(notes + [f'{k}={v}' for k, v in knobs.items()])

    def reload(self) -> dict:
        """Re-read the library (the active target is refreshed if it is still there)."""
        errors = self.library.reload()
        if self.target is not None and self.target.name in self.library.targets:
            self.target = self.library.targets[self.target.name]
        return errors
