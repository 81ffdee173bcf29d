"""The Ray side of the harness (DESIGN §5): agent actors, peer-to-peer delivery, placement
across nodes, the per-agent round synchroniser and fault injection on the wire.

Not built yet: it is the next issue ("Agents as Ray actors across cluster nodes"). The
allocator API in ``harness.api`` is already shaped for it: allocators never import Ray, hold no
reference to other agents, return ``(receiver, message)`` pairs, and draw randomness only from
the generator derived from the trial seed and their id, so an actor can host one unchanged.
"""
