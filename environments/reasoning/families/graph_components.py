"""graph_components: count the connected components of a small undirected
graph, or (from level 3 on, sometimes) give the size of the largest one."""

from __future__ import annotations

from typing import Any

from . import _common as c

NAME = "graph_components"

# level: (nodes, edges, chance of asking for the largest component)
_LEVELS = {
    1: (5, 3, 0.0),
    2: (7, 5, 0.0),
    3: (10, 7, 0.3),
    4: (14, 10, 0.4),
    5: (20, 15, 0.5),
}
QUESTIONS = ("count", "largest")


def components(nodes: list[Any], edges: list[list[Any]]) -> list[int]:
    """The sizes of the components (union-find), largest first."""
    parent = {u: u for u in nodes}

    def find(u: Any) -> Any:
        while parent[u] != u:
            parent[u] = parent[parent[u]]
            u = parent[u]
        return u

    for u, v in edges:
        ru, rv = find(u), find(v)
        if ru != rv:
            parent[ru] = rv
    sizes: dict[Any, int] = {}
    for u in nodes:
        r = find(u)
        sizes[r] = sizes.get(r, 0) + 1
    return sorted(sizes.values(), reverse=True)


def _answer_of(question: str, sizes: list[int]) -> int:
    return len(sizes) if question == "count" else sizes[0]


def generate(rng: Any, level: int) -> dict[str, Any]:
    n, m, p_largest = _LEVELS[level]
    nodes = list(range(n))
    pairs = [[a, b] for a in range(n) for b in range(a + 1, n)]
    edges = rng.sample(pairs, m)
    for e in edges:
        if rng.random() < 0.5:
            e.reverse()
    question = "largest" if rng.random() < p_largest else "count"
    return {
        "nodes": nodes,
        "edges": edges,
        "question": question,
        "answer": _answer_of(question, components(nodes, edges)),
    }


def prompt(task: dict[str, Any]) -> str:
    nodes = ", ".join(str(u) for u in task["nodes"])
    edges = ", ".join(f"{u}-{v}" for u, v in task["edges"])
    if task["question"] == "count":
        q = "How many connected components does the graph have? A node with no edges is a component on its own."
    else:
        q = "How many nodes are in its largest connected component?"
    return f"An undirected graph has the nodes {nodes} and the edges {edges}.\n\n{q} Answer with the number alone."


# The answer is an integer the task holds.
check = c.check_int_answer
answer = c.stored_answer


def _node_ok(u: Any) -> bool:
    return c.is_int(u) or (isinstance(u, str) and bool(u))


def inline(task: dict[str, Any]) -> dict[str, Any]:
    nodes = c.need_list(task, "nodes", NAME, 1, 5000)
    if not all(_node_ok(u) for u in nodes):
        raise c.bad("graph_components task field `nodes` must hold integers or non-empty strings")
    if len({repr(u) for u in nodes}) != len(nodes):
        raise c.bad("graph_components task field `nodes` lists a node twice")
    edges = c.need_list(task, "edges", NAME, 0, 20000)
    known = {repr(u) for u in nodes}
    for e in edges:
        if not (isinstance(e, list) and len(e) == 2 and all(_node_ok(u) and repr(u) in known for u in e)):
            raise c.bad("graph_components task field `edges` must hold [node, node] pairs of listed nodes")
    question = task.get("question", "count")
    if question not in QUESTIONS:
        raise c.bad('graph_components task field `question` must be "count" or "largest"')
    edges = [list(e) for e in edges]
    return {
        "nodes": list(nodes),
        "edges": edges,
        "question": question,
        "answer": _answer_of(question, components(nodes, edges)),
    }
