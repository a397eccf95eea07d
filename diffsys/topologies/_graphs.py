"""Small graph computations on concrete topologies (host-side numpy; structural, evaluated once)."""

from __future__ import annotations

import itertools

import numpy as np

#: NVLink2 link counts between the 8 GPUs of a DGX-1 V100 (hybrid cube-mesh; ``nvidia-smi topo -m`` NV1/NV2).
DGX1_V100_LINKS = np.array([
    [0, 1, 1, 2, 2, 0, 0, 0],
    [1, 0, 2, 1, 0, 2, 0, 0],
    [1, 2, 0, 2, 0, 0, 1, 0],
    [2, 1, 2, 0, 0, 0, 0, 1],
    [2, 0, 0, 0, 0, 1, 1, 2],
    [0, 2, 0, 0, 1, 0, 2, 1],
    [0, 0, 1, 0, 1, 2, 0, 2],
    [0, 0, 0, 1, 2, 1, 2, 0],
])


def directed_ring_count(links) -> int:
    """Largest number of arc-disjoint directed Hamiltonian cycles (rings) in a multigraph of full-duplex links.

    Each link contributes one arc per direction; a ring of ``n`` ranks uses ``n`` arcs. For two ranks the ring
    ``0→1→0`` uses both arcs of one link. Exhaustive search (fine for ``n <= 8``): NCCL builds its rings the same
    way (search over the NVLink graph), so this is the NVLink ring bandwidth available to a ring collective.
    """
    links = np.asarray(links, dtype=int)
    n = links.shape[0]
    if n < 2:
        return 0
    cycles = []
    for perm in itertools.permutations(range(1, n)):
        order = (0,) + perm
        arcs = [(order[i], order[(i + 1) % n]) for i in range(n)]
        if all(links[a, b] > 0 for a, b in arcs):
            cycles.append(arcs)
    best = 0

    def search(start, cap, count):
        nonlocal best
        best = max(best, count)
        if best >= (n * links.sum(1).min()) // n:  # cannot beat the degree bound
            return
        for i in range(start, len(cycles)):
            c = cycles[i]
            if all(cap[a, b] > 0 for a, b in c):
                for a, b in c:
                    cap[a, b] -= 1
                search(i, cap, count + 1)
                for a, b in c:
                    cap[a, b] += 1

    search(0, links.copy(), 0)
    return best


def dgx1_ring_count(gpus: int) -> int:
    """NVLink rings among the first ``gpus`` GPUs of a DGX-1 V100 (``0`` when no Hamiltonian NVLink cycle exists)."""
    if not 1 <= gpus <= 8:
        raise ValueError(f"gpus must be in [1, 8] for a DGX-1, got {gpus}")
    return directed_ring_count(DGX1_V100_LINKS[:gpus, :gpus])
