"""pybullet tabletop simulation: objects, scenes, cameras, rendering and exact ground truth.

Import submodules directly (``from ccl_perception.sim.scene import TabletopScene``); this
package imports nothing heavy itself.
"""
