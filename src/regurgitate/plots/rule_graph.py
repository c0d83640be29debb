"""The rule graph of a run: a box per rule of its DAG, an arrow from each rule to every rule that
reads its output, in layers from the first rules (the corpus) down to `all`.

Snakemake's report draws the job graph (a node per rule per level of the job DAG, unreadable for
a study of hundreds of jobs), and its `--rulegraph` needs Graphviz. This is a layered drawing
(Sugiyama, Tagawa and Toda 1981) on matplotlib alone, every step deterministic (ties go by rule
name, never by a set's order), so the same DAG gives the same bytes:

1. Cycles of rules (a recursion's next generation reads its predecessor's output, written by a
   rule below it) are broken by turning the fewest arrows upward (`feedback_edges`); an arrow
   from a rule to itself (a job reads another job of its rule) is drawn as a loop.
2. Layers by the longest path from the first rules (`rule_layers`); `all` alone in the last.
3. An arrow that spans layers passes through a point in each layer between, and the order in
   each layer is found by barycentre sweeps and swaps of neighbours (Gansner et al. 1993; the
   fewest crossings of those tried).
4. Positions in a layer: as near the mean of their neighbours as the boxes' widths allow; an
   arrow is a smooth curve through its points.
5. With `reduce`, an arrow is left out where a longer path of arrows already leads from one rule
   to the other (the transitive reduction): every rule still reaches each rule it depends on.

The layout is computed in points and drawn on a figure of exactly its size, so no text depends on
how matplotlib would scale the page.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import PurePosixPath

from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.font_manager import FontProperties
from matplotlib.patches import FancyArrowPatch, FancyBboxPatch, Rectangle
from matplotlib.path import Path
from matplotlib.textpath import TextToPath

from regurgitate.plots.style import LEGEND_SIZE, TITLE_SIZE

FINAL_RULE = "all"

# Fill colours of the boxes, one per rule file in the order the files' first rules appear from
# the top (Paul Tol's "light" scheme, made for black text, ordered so that neighbours differ in
# hue, and two pale ones after it); a box's edge is dark grey.
FILE_COLOURS = [
    "#77AADD", "#EE8866", "#44BB99", "#FFAABB", "#EEDD88", "#99DDFF", "#BBCC33", "#CCBBEE",
    "#DDDDDD", "#AAAA00", "#BBEEBB",
]  # fmt: skip
EDGE_COLOUR = "#555555"
FEEDBACK_COLOUR = "#CC3311"  # an arrow that goes back up: another generation of a cycle

# Sizes in points.
NODE_SIZE = 8  # the rule names
NODE_HEIGHT = 16.0
NODE_PAD = 5.0  # between a name and its box's sides
NODE_WIDTH = 40.0  # at least: room for the arrows into `all`
NODE_GAP = 10.0  # between two boxes of a layer
PASS_GAP = 5.0  # between an arrow passing through a layer and what is beside it
LOOP_ROOM = 12.0  # beside a box with a loop
# The most an arrow passing through a layer leans (across over down): within a box's height of
# the layer it stays within its gap of the boxes beside it.
PASS_SLOPE = PASS_GAP / (NODE_HEIGHT / 2)
LAYER_STEP = 38.0  # from one layer's centre to the next
MARGIN = 8.0
LEGEND_GAP = 14.0  # between legend entries
LEGEND_ROW = 14.0
SWATCH = (12.0, 8.0)

# Crossing reduction: sweeps tried (the best is kept), each followed by rounds of swapping
# neighbours; position passes.
SWEEPS = 24
TRANSPOSE_ROUNDS = 10
POSITION_PASSES = 40
# Components of a cycle up to this many rules get the exact fewest upward arrows; larger ones a
# greedy order (Eades, Lin and Smyth 1993).
EXACT_CYCLE_RULES = 12

_TEXT = TextToPath()


def text_width(text: str, size: float) -> float:
    """The width of `text` in points at font size `size`, as matplotlib lays it out."""
    return _TEXT.get_text_width_height_descent(text, FontProperties(size=size), ismath=False)[0]


def _dependencies(graph: Mapping[str, Iterable[str]]) -> dict[str, set[str]]:
    """rule -> the rules whose output it reads, every rule named (a dependency alone too)."""
    deps = {rule: set(d) for rule, d in graph.items()}
    for named in list(deps.values()):
        for rule in named:
            deps.setdefault(rule, set())
    return deps


def _successors(deps: Mapping[str, set[str]]) -> dict[str, set[str]]:
    """rule -> the other rules that read its output (the direction data flows)."""
    flow: dict[str, set[str]] = {rule: set() for rule in deps}
    for rule, named in deps.items():
        for dep in named - {rule}:
            flow[dep].add(rule)
    return flow


def _strong_components(flow: Mapping[str, set[str]]) -> list[list[str]]:
    """The strongly connected components (Tarjan), each sorted, rules visited by name."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    components = []

    def visit(rule: str) -> None:
        index[rule] = low[rule] = len(index)
        stack.append(rule)
        on_stack.add(rule)
        for other in sorted(flow[rule]):
            if other not in index:
                visit(other)
                low[rule] = min(low[rule], low[other])
            elif other in on_stack:
                low[rule] = min(low[rule], index[other])
        if low[rule] == index[rule]:
            component = []
            while True:
                other = stack.pop()
                on_stack.discard(other)
                component.append(other)
                if other == rule:
                    break
            components.append(sorted(component))

    for rule in sorted(flow):
        if rule not in index:
            visit(rule)
    return components


def _exact_order(rules: list[str], flow: Mapping[str, set[str]]) -> list[str]:
    """The order of `rules` with the fewest arrows pointing back (ties: the first by position
    of the sorted names), by dynamic programming over subsets."""
    position = {rule: i for i, rule in enumerate(rules)}
    successors = [sum(1 << position[o] for o in flow[r] if o in position) for r in rules]
    best: dict[int, tuple[int, tuple[int, ...]]] = {0: (0, ())}
    for placed in range(1 << len(rules)):  # every set after each of its subsets
        cost, order = best[placed]
        for i in range(len(rules)):
            if placed >> i & 1:
                continue
            # Appending rule i after `placed` points its arrows into `placed` back.
            candidate = (cost + (successors[i] & placed).bit_count(), (*order, i))
            grown = placed | 1 << i
            if grown not in best or candidate < best[grown]:
                best[grown] = candidate
    return [rules[i] for i in best[(1 << len(rules)) - 1][1]]


def _greedy_order(rules: list[str], flow: Mapping[str, set[str]]) -> list[str]:
    """Eades, Lin and Smyth's order: sinks to the end, sources to the front, else the rule with
    the most arrows out over in (ties by name)."""
    remaining = set(rules)
    front: list[str] = []
    back: list[str] = []

    def inward(rule: str) -> int:
        return sum(rule in flow[o] for o in remaining if o != rule)

    def outward(rule: str) -> int:
        return len((flow[rule] & remaining) - {rule})

    while remaining:
        moved = True
        while moved:
            moved = False
            for rule in sorted(remaining):
                if outward(rule) == 0:
                    back.insert(0, rule)
                    remaining.discard(rule)
                    moved = True
                elif inward(rule) == 0:
                    front.append(rule)
                    remaining.discard(rule)
                    moved = True
        if remaining:
            rule = max(sorted(remaining), key=lambda r: outward(r) - inward(r))
            front.append(rule)
            remaining.discard(rule)
    return front + back


def feedback_edges(graph: Mapping[str, Iterable[str]]) -> set[tuple[str, str]]:
    """The arrows (rule, reader) that the drawing turns upward: the fewest that leave no cycle
    of rules. A rule that reads its own output (another job of it) is no cycle here."""
    flow = _successors(_dependencies(graph))
    upward = set()
    for component in _strong_components(flow):
        if len(component) < 2:
            continue
        if len(component) <= EXACT_CYCLE_RULES:
            order = _exact_order(component, flow)
        else:
            order = _greedy_order(component, flow)
        position = {rule: i for i, rule in enumerate(order)}
        upward |= {
            (rule, reader)
            for rule in component
            for reader in flow[rule]
            if reader in position and position[reader] < position[rule]
        }
    return upward


def _downward_edges(deps: Mapping[str, set[str]], upward: set) -> set[tuple[str, str, bool]]:
    """Every arrow but loops as (upper, lower, turned) in the drawing: the upward ones turned
    around (a rule and its reader may read each other: two arrows between the same boxes)."""
    edges = set()
    for reader, named in deps.items():
        for rule in named - {reader}:
            turned = (rule, reader) in upward
            edges.add((reader, rule, True) if turned else (rule, reader, False))
    return edges


def rule_layers(graph: Mapping[str, Iterable[str]], final: str | None = FINAL_RULE):
    """The rules layer by layer, each sorted by name: a rule lies below every rule whose output
    it reads (but for the arrows `feedback_edges` turns upward), by the longest path from the
    first rules; a first rule lies just above the highest rule that reads it; `final` (`all`)
    alone in the last layer."""
    deps = _dependencies(graph)
    edges = {(upper, lower) for upper, lower, _ in _downward_edges(deps, feedback_edges(graph))}
    above = {rule: sorted(u for u, lower in edges if lower == rule) for rule in deps}
    below = {rule: sorted(lower for u, lower in edges if u == rule) for rule in deps}
    layer: dict[str, int] = {}
    pending = {rule: len(above[rule]) for rule in deps}
    ready = sorted(rule for rule, n in pending.items() if n == 0)
    while ready:
        rule = ready.pop(0)
        layer[rule] = max((layer[u] + 1 for u in above[rule]), default=0)
        for lower in below[rule]:
            pending[lower] -= 1
            if pending[lower] == 0:
                ready.append(lower)
        ready.sort()
    if final in layer and not below[final]:
        layer[final] = max((n for rule, n in layer.items() if rule != final), default=-1) + 1
    for rule in sorted(deps):
        if not above[rule] and below[rule]:
            layer[rule] = min(layer[lower] for lower in below[rule]) - 1
    used = sorted(set(layer.values()))
    return [sorted(rule for rule in deps if layer[rule] == n) for n in used]


def transitive_reduction(edges: set[tuple[str, str]]) -> set[tuple[str, str]]:
    """The arrows of an acyclic graph that no longer path of arrows implies."""
    below: dict[str, set[str]] = {}
    for upper, lower in edges:
        below.setdefault(upper, set()).add(lower)

    reach: dict[str, set[str]] = {}

    def reachable(rule: str) -> set[str]:
        if rule not in reach:
            found = set()
            for lower in below.get(rule, ()):
                found |= {lower} | reachable(lower)
            reach[rule] = found
        return reach[rule]

    return {
        (upper, lower)
        for upper, lower in edges
        if not any(lower in reachable(o) for o in below[upper] if o != lower)
    }


@dataclass
class Layout:
    """Where a rule graph is drawn, in points (see layout_rule_graph)."""

    layers: list[list]  # the items of each layer, in drawing order: rules and passing points
    x: dict = field(default_factory=dict)
    width: dict = field(default_factory=dict)  # of a rule's box; 0 for a passing point
    chains: list = field(default_factory=list)  # (rule, reader, [items from upper to lower])
    upward: set = field(default_factory=set)
    loops: set = field(default_factory=set)


def _crossings(upper: list, lower: list, links: list[tuple]) -> int:
    at_upper = {item: i for i, item in enumerate(upper)}
    at_lower = {item: i for i, item in enumerate(lower)}
    ends = [(at_upper[a], at_lower[b]) for a, b in links if a in at_upper and b in at_lower]
    return sum(
        (a1 - a2) * (b1 - b2) < 0 for i, (a1, b1) in enumerate(ends) for a2, b2 in ends[i + 1 :]
    )


def _order_layers(layers: list[list], links: list[tuple], label) -> list[list]:
    """The order of the items in each layer with the fewest crossings that barycentre sweeps,
    down and up in turn, each followed by swaps of neighbours, found."""
    ups: dict = {}
    downs: dict = {}
    for a, b in links:
        downs.setdefault(a, []).append(b)
        ups.setdefault(b, []).append(a)

    def total(order: list[list]) -> int:
        return sum(_crossings(order[i], order[i + 1], links) for i in range(len(order) - 1))

    def sweep(order: list[list], rows, neighbours) -> None:
        for i, j in rows:
            position = {item: k for k, item in enumerate(order[j])}
            current = {item: k for k, item in enumerate(order[i])}

            def barycentre(item, position=position, current=current) -> tuple[float, int]:
                near = [position[o] for o in neighbours.get(item, ()) if o in position]
                return (sum(near) / len(near) if near else current[item], current[item])

            order[i] = sorted(order[i], key=barycentre)

    def pair_crossings(order: list[list], i: int, a, b) -> int:
        """Crossings of the arrows of `a` with those of `b`, `a` left of `b` in layer i."""
        count = 0
        for j, neighbours in ((i - 1, ups), (i + 1, downs)):
            if 0 <= j < len(order):
                position = {item: k for k, item in enumerate(order[j])}
                count += sum(
                    position[x] > position[y]
                    for x in neighbours.get(a, ())
                    for y in neighbours.get(b, ())
                )
        return count

    def centre(order: list[list], i: int, item) -> float:
        """Where an item's neighbours in the layers above and below lie, as shares of their
        layers' widths."""
        shares = [
            (order[j].index(o) + 0.5) / len(order[j])
            for j, neighbours in ((i - 1, ups), (i + 1, downs))
            if 0 <= j < len(order)
            for o in neighbours.get(item, ())
        ]
        return sum(shares) / len(shares) if shares else 0.5

    def transpose(order: list[list]) -> None:
        """Swap neighbours in a layer while that leaves fewer crossings (Gansner et al. 1993),
        or as many and puts them in the order of where their neighbours lie."""
        for _ in range(TRANSPOSE_ROUNDS):
            swapped = False
            for i, layer in enumerate(order):
                for k in range(len(layer) - 1):
                    a, b = layer[k], layer[k + 1]
                    kept, swap = pair_crossings(order, i, a, b), pair_crossings(order, i, b, a)
                    if swap < kept or (swap == kept and centre(order, i, b) < centre(order, i, a)):
                        layer[k], layer[k + 1] = b, a
                        swapped = True
            if not swapped:
                return

    order = [sorted(layer, key=label) for layer in layers]
    sweep(order, [(i, i - 1) for i in range(1, len(order))], ups)
    transpose(order)
    best = (total(order), [list(layer) for layer in order])
    for n in range(SWEEPS):
        if n % 2:
            sweep(order, [(i, i - 1) for i in range(1, len(order))], ups)
        else:
            sweep(order, [(i, i + 1) for i in range(len(order) - 2, -1, -1)], downs)
        transpose(order)
        crossings = total(order)
        if crossings < best[0]:
            best = (crossings, [list(layer) for layer in order])
    return best[1]


def _isotonic(targets: list[float], weights: list[float]) -> list[float]:
    """The non-decreasing values nearest `targets` in weighted least squares (pool adjacent
    violators)."""
    blocks: list[list[float]] = []  # weighted sum, weight, items
    for target, weight in zip(targets, weights, strict=True):
        blocks.append([target * weight, weight, 1])
        while len(blocks) > 1 and blocks[-2][0] / blocks[-2][1] > blocks[-1][0] / blocks[-1][1]:
            total, weight_sum, items = blocks.pop()
            blocks[-1][0] += total
            blocks[-1][1] += weight_sum
            blocks[-1][2] += items
    return [total / weight_sum for total, weight_sum, items in blocks for _ in range(int(items))]


def _place(layout: Layout, links: list[tuple]) -> None:
    """x of every item: each as near the mean of its neighbours in the layers above and below as
    the widths of the boxes beside it allow."""
    neighbours: dict = {}
    for a, b in links:
        neighbours.setdefault(a, []).append(b)
        neighbours.setdefault(b, []).append(a)

    def separations(layer: list) -> list[float]:
        gaps = []
        for a, b in zip(layer, layer[1:], strict=False):
            gap = NODE_GAP if layout.width[a] and layout.width[b] else PASS_GAP
            loop = LOOP_ROOM if a in layout.loops else 0.0
            gaps.append(layout.width[a] / 2 + loop + gap + layout.width[b] / 2)
        return gaps

    for layer in layout.layers:
        x = 0.0
        for i, item in enumerate(layer):
            layout.x[item] = x
            if i < len(layer) - 1:
                x += separations(layer)[i]
    rows = list(range(len(layout.layers)))
    for n in range(POSITION_PASSES):
        for row in rows if n % 2 == 0 else rows[::-1]:
            layer = layout.layers[row]
            gaps = separations(layer)
            offsets = [sum(gaps[:i]) for i in range(len(layer))]
            wanted = []
            for item in layer:
                near = [layout.x[o] for o in neighbours.get(item, ())]
                wanted.append(sum(near) / len(near) if near else layout.x[item])
            # A passing point pulls harder: a long arrow stays straight.
            weights = [1.0 if layout.width[item] else 2.0 for item in layer]
            fitted = _isotonic([w - o for w, o in zip(wanted, offsets, strict=True)], weights)
            for item, value, offset in zip(layer, fitted, offsets, strict=True):
                layout.x[item] = value + offset
    left = min(layout.x[i] - layout.width[i] / 2 for layer in layout.layers for i in layer)
    for item in layout.x:
        layout.x[item] = round(layout.x[item] - left, 2)


def layout_rule_graph(
    graph: Mapping[str, Iterable[str]],
    labels: Mapping[str, str] | None = None,
    final: str | None = FINAL_RULE,
    reduce: bool = True,
) -> Layout:
    """Where every rule's box and every arrow's path lies, in points from the top left corner
    of the drawing (x right, layers downward); `labels` are the boxes' texts (rule names where
    not given)."""
    labels = dict(labels or {})
    deps = _dependencies(graph)
    upward = feedback_edges(graph)
    layers = rule_layers(graph, final)
    row = {rule: i for i, layer in enumerate(layers) for rule in layer}
    edges = _downward_edges(deps, upward)
    if reduce:
        kept = transitive_reduction({(u, lower) for u, lower, turned in edges if not turned})
        edges = {e for e in edges if e[2] or e[:2] in kept}
    layout = Layout(
        layers=[list(layer) for layer in layers],
        upward=upward,
        loops={rule for rule, named in deps.items() if rule in named},
    )
    for rule in deps:
        text = text_width(labels.get(rule, rule), NODE_SIZE)
        layout.width[rule] = max(text + 2 * NODE_PAD, NODE_WIDTH)
    links = []
    for upper, lower, turned in sorted(edges):
        chain = [upper]
        for passed in range(row[upper] + 1, row[lower]):
            point = ("pass", upper, lower, turned, passed)
            layout.layers[passed].append(point)
            layout.width[point] = 0.0
            chain.append(point)
        chain.append(lower)
        links += list(zip(chain, chain[1:], strict=False))
        # The rule whose output is read first: an upward arrow runs from `lower` to `upper`.
        rule, reader = (lower, upper) if turned else (upper, lower)
        layout.chains.append((rule, reader, chain))

    def label(item) -> tuple:
        return (item,) if isinstance(item, str) else item[1:4]

    layout.layers = _order_layers(layout.layers, links, label)
    _place(layout, links)
    return layout


def _ports(layout: Layout) -> dict:
    """Where each arrow leaves its upper box and enters its lower one: spread along the box's
    edge in the order of where the arrows go, so that they do not start in one point."""
    leaving: dict = {}
    entering: dict = {}
    for index, (_, _, chain) in enumerate(layout.chains):
        leaving.setdefault(chain[0], []).append((layout.x[chain[1]], index))
        entering.setdefault(chain[-1], []).append((layout.x[chain[-2]], index))
    ports = {}
    for end, groups in (("upper", leaving), ("lower", entering)):
        for item, arrows in groups.items():
            span = 0.6 * layout.width[item]
            for k, (_, index) in enumerate(sorted(arrows)):
                share = (k + 1) / (len(arrows) + 1) - 0.5
                ports[(end, index)] = layout.x[item] + share * span
    return ports


def _smooth(points: list[tuple[float, float]]) -> list[tuple[float, float]]:
    """The vertices of cubic Bezier curves through `points`: vertical where an arrow leaves or
    enters a box; through each layer between in the direction from the point before to the point
    after (Catmull-Rom), but steep enough to pass the boxes beside it clear, so that an arrow
    that passes far beside a box does not hook round it."""
    tangents = []
    for k in range(len(points)):
        if k in (0, len(points) - 1):
            step = points[1][1] - points[0][1] if k == 0 else points[k][1] - points[k - 1][1]
            tangents.append((0.0, 1.5 * step))
        else:
            (xa, ya), (xb, yb) = points[k - 1], points[k + 1]
            steepest = PASS_SLOPE * abs(yb - ya) / 2
            tangents.append((max(-steepest, min(steepest, (xb - xa) / 2)), (yb - ya) / 2))
    vertices = [points[0]]
    for k in range(len(points) - 1):
        (x0, y0), (x1, y1) = points[k], points[k + 1]
        (u0, v0), (u1, v1) = tangents[k], tangents[k + 1]
        vertices += [(x0 + u0 / 3, y0 + v0 / 3), (x1 - u1 / 3, y1 - v1 / 3), (x1, y1)]
    return vertices


@dataclass(frozen=True)
class RuleGraph:
    """A run's rule graph as `regurgitate.jobs.rule_graph` records it."""

    depends_on: dict[str, list[str]]
    jobs: dict[str, int] = field(default_factory=dict)
    files: dict[str, str] = field(default_factory=dict)


def rule_label(rule: str, jobs: int | None) -> str:
    """A box's text: the rule, and its number of jobs where it has more than one."""
    return f"{rule} ×{jobs}" if jobs and jobs > 1 else rule


def plot_rule_graph(
    graph: RuleGraph, final: str | None = FINAL_RULE, reduce: bool = True
) -> Figure:
    """The layered drawing of `graph`: boxes filled by rule file (a legend above), arrows from a
    rule to the rules that read its output, upward ones and loops in another colour, dashed."""
    rules = sorted(_dependencies(graph.depends_on))
    labels = {rule: rule_label(rule, graph.jobs.get(rule)) for rule in rules}
    layout = layout_rule_graph(graph.depends_on, labels, final, reduce)
    row = {item: i for i, layer in enumerate(layout.layers) for item in layer}

    # Files in the order their first rule appears from the top, then by name.
    files = sorted(
        {graph.files[rule] for rule in rules if rule in graph.files},
        key=lambda f: (min(row[r] for r in rules if graph.files.get(r) == f), f),
    )
    colours = {f: FILE_COLOURS[i % len(FILE_COLOURS)] for i, f in enumerate(files)}

    # The legend: a swatch and the file name per rule file, and the upward arrows' key, in rows
    # as wide as the drawing.
    entries = [("file", f, PurePosixPath(f).name) for f in files]
    if layout.upward or layout.loops:
        entries.append(("upward", None, "read by a rule above it (another generation)"))
    drawing_width = max(
        layout.x[i] + layout.width[i] / 2 + (LOOP_ROOM if i in layout.loops else 0)
        for layer in layout.layers
        for i in layer
    )
    title = f"Rule graph: {len(rules)} rules"
    if graph.jobs:
        title += f", {sum(graph.jobs.values())} jobs"
    sizes = [SWATCH[0] + 4 + text_width(entry[2], LEGEND_SIZE) for entry in entries]
    width = max(drawing_width, text_width(title, TITLE_SIZE), *sizes) + 2 * MARGIN
    legend_rows: list[list] = [[]]
    x = 0.0
    for entry, size in zip(entries, sizes, strict=True):
        if legend_rows[-1] and x + size > width - 2 * MARGIN:
            legend_rows.append([])
            x = 0.0
        legend_rows[-1].append((x, entry))
        x += size + LEGEND_GAP
    legend_rows = [r for r in legend_rows if r]
    title_height = TITLE_SIZE * 1.6
    legend_height = LEGEND_ROW * len(legend_rows) + 6
    graph_height = (len(layout.layers) - 1) * LAYER_STEP + NODE_HEIGHT
    height = MARGIN + title_height + legend_height + graph_height + MARGIN

    figure = Figure(figsize=(width / 72, height / 72))
    FigureCanvasAgg(figure)
    ax = figure.add_axes((0, 0, 1, 1))
    ax.set_xlim(0, width)
    ax.set_ylim(0, height)
    ax.set_axis_off()

    top = height - MARGIN
    ax.text(MARGIN, top - TITLE_SIZE, title, fontsize=TITLE_SIZE, va="baseline")
    for k, legend_row in enumerate(legend_rows):
        y = top - title_height - k * LEGEND_ROW - LEGEND_ROW / 2
        for x, (kind, file, text) in legend_row:
            left = MARGIN + x
            if kind == "file":
                ax.add_patch(
                    Rectangle(
                        (left, y - SWATCH[1] / 2),
                        *SWATCH,
                        facecolor=colours[file],
                        edgecolor=EDGE_COLOUR,
                        linewidth=0.6,
                    )
                )
            else:
                ax.add_patch(
                    FancyArrowPatch(
                        (left, y),
                        (left + SWATCH[0], y),
                        arrowstyle="-|>",
                        mutation_scale=7,
                        color=FEEDBACK_COLOUR,
                        linewidth=0.8,
                        linestyle=(0, (2, 1.5)),
                    )
                )
            ax.text(left + SWATCH[0] + 4, y, text, fontsize=LEGEND_SIZE, va="center_baseline")

    first_row = top - title_height - legend_height - NODE_HEIGHT / 2

    def centre(item) -> tuple[float, float]:
        return MARGIN + layout.x[item], first_row - row[item] * LAYER_STEP

    ports = _ports(layout)
    for index, (rule, _, chain) in enumerate(layout.chains):
        points = [centre(item) for item in chain]
        points[0] = (ports[("upper", index)], points[0][1] - NODE_HEIGHT / 2)
        points[-1] = (ports[("lower", index)], points[-1][1] + NODE_HEIGHT / 2)
        upward = rule != chain[0]
        if upward:
            points.reverse()
        codes = [Path.MOVETO] + [Path.CURVE4] * (3 * (len(points) - 1))
        vertices = _smooth(points)
        ax.add_patch(
            FancyArrowPatch(
                path=Path(vertices, codes),
                arrowstyle="-|>",
                mutation_scale=7,
                color=FEEDBACK_COLOUR if upward else EDGE_COLOUR,
                linewidth=0.8 if upward else 0.6,
                linestyle=(0, (2, 1.5)) if upward else "-",
                zorder=1,
            )
        )
    for rule in sorted(layout.loops):
        x, y = centre(rule)
        right = x + layout.width[rule] / 2
        vertices = [(right, y + 3), (right + LOOP_ROOM, y + 10), (right + LOOP_ROOM, y - 10)]
        ax.add_patch(
            FancyArrowPatch(
                path=Path([*vertices, (right, y - 3)], [Path.MOVETO] + [Path.CURVE4] * 3),
                arrowstyle="-|>",
                mutation_scale=6,
                color=FEEDBACK_COLOUR,
                linewidth=0.8,
                linestyle=(0, (2, 1.5)),
                zorder=1,
            )
        )
    for rule in rules:
        x, y = centre(rule)
        w = layout.width[rule]
        ax.add_patch(
            FancyBboxPatch(
                (x - w / 2, y - NODE_HEIGHT / 2),
                w,
                NODE_HEIGHT,
                boxstyle="round,pad=0,rounding_size=3",
                facecolor=colours.get(graph.files.get(rule), "#FFFFFF"),
                edgecolor=EDGE_COLOUR,
                linewidth=0.6,
                zorder=2,
            )
        )
        ax.text(x, y, labels[rule], fontsize=NODE_SIZE, ha="center", va="center_baseline", zorder=3)
    return figure
