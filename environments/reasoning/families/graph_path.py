"""graph_path: the length of a shortest path between two nodes of a small
weighted undirected graph (computed with Dijkstra's algorithm)."""

from __future__ import annotations

import heapq
from typing import Any

from . import _common as c

NAME = "graph_path"

# level: (nodes, edges, max weight)
_LEVELS = {
    1: (4, 4, 5),
    2: (5, 6, 9),
    3: (6, 8, 9),
    4: (8, 12, 15),
    5: (10, 16, 20),
}
LABELS = [chr(ord("A") + i) for i in range(26)]


def distances(nodes: list[str], edges: list[list[Any]], source: str) -> dict[str, tuple[int, int]]:
    """Shortest (length, hops) from ``source`` to each reachable node."""
    adj: dict[str, list[tuple[str, int]]] = {u: [] for u in nodes}
    for u, v, w in edges:
        adj[u].append((v, w))
        adj[v].append((u, w))
    best: dict[str, tuple[int, int]] = {}
    heap = [(0, 0, source)]
    while heap:
        d, h, u = heapq.heappop(heap)
        if u in best:
            continue
        best[u] = (d, h)
        for v, w in adj[u]:
            if v not in best:
                heapq.heappush(heap, (d + w, h + 1, v))
    return best


def generate(rng: Any, level: int) -> dict[str, Any]:
    n, m, wmax = _LEVELS[level]
    nodes = LABELS[:n]
    order = list(nodes)
    rng.shuffle(order)
    pairs: list[tuple[str, str]] = []
    for i in range(1, n):  # a random spanning tree keeps it connected
        pairs.append((order[rng.below(i)], order[i]))
    have = {tuple(sorted(p)) for p in pairs}
    rest = [(a, b) for i, a in enumerate(nodes) for b in nodes[i + 1 :] if (a, b) not in have]
    pairs += rng.sample(rest, min(m - len(pairs), len(rest)))
    edges = []
    for a, b in pairs:
        if rng.random() < 0.5:
            a, b = b, a
        edges.append([a, b, rng.randint(1, wmax)])
    rng.shuffle(edges)
    # Ask about a pair whose best path has the most hops (ties: first found).
    best_pair, best_hops = (nodes[0], nodes[1]), -1
    starts = list(nodes)
    rng.shuffle(starts)
    for s in starts[:4]:
        dist = distances(nodes, edges, s)
        for t in nodes:
            if t != s and dist[t][1] > best_hops:
                best_pair, best_hops = (s, t), dist[t][1]
    s, t = best_pair
    return {"nodes": nodes, "edges": edges, "source": s, "target": t, "answer": distances(nodes, edges, s)[t][0]}


def prompt(task: dict[str, Any]) -> str:
    edges = "\n".join(f"{u} - {v}: {w}" for u, v, w in task["edges"])
    return (
        f"An undirected graph has the nodes {', '.join(task['nodes'])} "
        "and these weighted edges (node - node: weight):\n"
        f"{edges}\n\n"
        f"What is the total weight of a shortest path from {task['source']} to {task['target']}? "
        "Answer with the number alone."
    )


# The answer is an integer the task holds.
check = c.check_int_answer
answer = c.stored_answer


def inline(task: dict[str, Any]) -> dict[str, Any]:
    raw = c.need_list(task, "edges", NAME, 1, 2000)
    edges = []
    for e in raw:
        if not (isinstance(e, list) and len(e) == 3 and isinstance(e[0], str) and isinstance(e[1], str)):
            raise c.bad("graph_path task field `edges` must hold [node, node, weight] triples")
        if not c.is_int(e[2]) or e[2] < 0:
            raise c.bad("graph_path task field `edges`: weights must be non-negative integers")
        edges.append([e[0], e[1], e[2]])
    nodes = task.get("nodes")
    if nodes is None:
        nodes = list(dict.fromkeys(x for e in edges for x in e[:2]))
    if not isinstance(nodes, list) or not all(isinstance(x, str) for x in nodes) or len(set(nodes)) != len(nodes):
        raise c.bad("graph_path task field `nodes` must be a list of distinct node names")
    known = set(nodes)
    if any(e[0] not in known or e[1] not in known for e in edges):
        raise c.bad("graph_path task field `edges` names a node missing from `nodes`")
    s = c.need_str(task, "source", NAME, 100)
    t = c.need_str(task, "target", NAME, 100)
    if s not in known or t not in known:
        raise c.bad("graph_path task fields `source` and `target` must be nodes of the graph")
    dist = distances(nodes, edges, s)
    if t not in dist:
        raise c.bad("graph_path task: `target` cannot be reached from `source`")
    return {"nodes": list(nodes), "edges": edges, "source": s, "target": t, "answer": dist[t][0]}
