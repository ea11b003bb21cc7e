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
Node parameters: declared from a defaults table, checked against a limits table.

Every node declares its ``PARAMS`` (name: default; the default's type is the parameter's
type) with :func:`declare_parameters`, checks them at start-up against its limits table in
``ccl_perception.node_limits`` (a bad value stops it with the reason) and refuses a bad
run-time change over SetParameters with the reason (:func:`refuse_bad_changes`), so
``ros2 param get`` always shows a value in effect.
"""

from ccl_perception.model_settings import DEFAULT_BACKEND, DEFAULT_DEVICE, DEFAULT_DOWNSCALE

#: The model parameters of every node that runs the descriptor network (defaults:
#: :mod:`ccl_perception.model_settings`).
MODEL_PARAMS = {
    'checkpoint': '',           # trained model (.pt); '' = the shipped default model
    'device': DEFAULT_DEVICE,   # 'cpu' or 'cuda[:i]'
    'backend': DEFAULT_BACKEND,  # 'torch' or 'onnx'
    # shrink camera images this many times before the model (2: 640x480 -> 320x240)
    'downscale': DEFAULT_DOWNSCALE,
}

_TYPE_WORDS = {bool: 'a boolean (true/false)', int: 'an integer', float: 'a double',
               str: 'a string'}


def _type_words(value) -> str:
    if isinstance(value, (list, tuple)):
        item = _TYPE_WORDS.get(type(value[0]), 'a value') if value else 'a value'
        return f'a list of {item.split(" ", 1)[1]}s'
    return _TYPE_WORDS.get(type(value), type(value).__name__)


def declare_parameters(node, defaults: dict) -> None:
    """
    Declare every ``name: default`` of ``defaults`` on ``node`` (types follow the defaults).

    Raises:
        ValueError: one line naming the parameter whose given value (``-p``, YAML) has another
            type than its default, e.g. ``max_rate_hz = 5 is not allowed: must be a double like
            its default 15.0 (write 5.0)``, instead of rclpy's ``InvalidParameterTypeException``.
    """
    from rclpy.exceptions import InvalidParameterTypeException

    for name, value in defaults.items():
        try:
            node.declare_parameter(name, value)
        except InvalidParameterTypeException as e:
            given = getattr(node, '_parameter_overrides', {}).get(name)
            shown = repr(given.value) if given is not None else f'({e})'
            whole = given is not None and type(given.value) is int
            hint = f' (write {given.value}.0)' if whole and isinstance(value, float) else ''
            raise ValueError(f'{name} = {shown} is not allowed: must be '
                             f'{_type_words(value)} like its default {value!r}{hint}') from None


def param_values(node, names) -> dict:
    """Return the current values of the named parameters."""
    return {n: node.get_parameter(n).value for n in names}


def refuse_bad_changes(node, defaults: dict, run_time: set, check_fn) -> None:
    """
    Refuse a SetParameters call that ``check_fn`` or ``run_time`` does not allow.

    A bad value, or a change to a parameter the running node does not take (outside
    ``run_time``: "can only be set at start-up"), is refused with the reason
    (``node_limits.refusal``) and the old value stays, so ``ros2 param get`` shows what is in
    effect.

    Args:
        node: the node (its parameters ``defaults`` are declared).
        defaults: the node's ``PARAMS`` table.
        run_time: names the running node takes.
        check_fn: the node's check (``values -> checked values``; ``ValueError`` says why).
    """
    from ccl_perception.node_limits import refusal
    from rcl_interfaces.msg import SetParametersResult

    def on_set(params):
        new = {p.name: p.value for p in params}
        why = refusal(new, param_values(node, defaults), run_time, check_fn)
        if why is not None:
            node.get_logger().warning(f'parameters {sorted(new)} refused: {why}')
        return SetParametersResult(successful=why is None, reason=why or '')
    node.add_on_set_parameters_callback(on_set)


def load_extractor(node):
    """
    ``(DescriptorExtractor, '')`` from the node's :data:`MODEL_PARAMS`, or ``(None, reason)``.

    A node without a model stays up and reports the reason on ``~/status``.
    """
    try:
        from ccl_perception.inference import DescriptorExtractor
        from ccl_perception.model_zoo import default_model_path
        p = param_values(node, MODEL_PARAMS)
        checkpoint = p['checkpoint'] or default_model_path()
        return DescriptorExtractor(checkpoint, device=p['device'], backend=p['backend'],
                                   downscale=int(p['downscale'])), ''
    except Exception as e:  # noqa: BLE001 - any load failure is reported, not raised
        from ccl_perception.cli import one_line
        reason = f'model not loaded: {one_line(e)}'
        node.get_logger().error(reason)
        return None, reason
