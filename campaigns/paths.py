"""The ways through a sequence: which step follows which, and the branches (issue 18).

The rule, as the TOML comments state it: after a step with `then`, the branch decides; after a
step without it, `next` (a step's name or "end") if given, else the next step in the file, and
the last step ends the sequence. A branch's target continues by the same rule, so a step only
one branch takes is best written last, with `next` naming the step where the ways meet again
(and the step before it `next = "end"`): the other steps keep their numbers.

Messages stay one row per (enrollment, step), so a step may be visited at most once: every
cycle is refused (`problems`), with or without a delay. Steps are numbered by their place in
the file, which is what the planner, the messages and the reports count in.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from campaigns.definitions import END, Sequence

#: The tracked link a `clicked` branch waits for (core.settings: always the booking page).
BOOKING_LINK = "booking"


@dataclass(frozen=True)
class Decision:
    """A branching step's targets as step indices (None: the sequence ends)."""

    clicked: int | None
    replied: int | None
    otherwise: int | None
    waits_for_click: bool
    waits_for_reply: bool

    def target(self, event: str) -> int | None:
        return {"clicked": self.clicked, "replied": self.replied}.get(event, self.otherwise)


@dataclass(frozen=True)
class Paths:
    """Per step index: the step that follows it when it has no branch (None: the end), and its
    branch when it has one. Built once per sequence; reading it costs a tuple index."""

    following: tuple[int | None, ...]
    decisions: tuple[Decision | None, ...]

    @property
    def branches(self) -> bool:
        return any(decision is not None for decision in self.decisions)

    def after(self, index: int) -> int | None:
        """The step after `index` when no branch decides (-1: before the first step)."""
        return 0 if index < 0 else self.following[index]


def paths_of(sequence: Sequence) -> Paths:
    """The sequence's ways through; an unknown target reads as the end (validation refuses it,
    so a launched campaign never has one)."""
    index = {step.name: number for number, step in enumerate(sequence.steps)}

    def resolve(target: str | None) -> int | None:
        return None if target is None or target == END else index.get(target)

    count = len(sequence.steps)
    following = tuple(
        resolve(step.next) if step.next is not None else (n + 1 if n + 1 < count else None)
        for n, step in enumerate(sequence.steps)
    )
    decisions = tuple(
        None
        if step.then is None
        else Decision(
            resolve(step.then.clicked),
            resolve(step.then.replied),
            resolve(step.then.otherwise),
            step.then.clicked is not None,
            step.then.replied is not None,
        )
        for step in sequence.steps
    )
    return Paths(following, decisions)


def successors(sequence: Sequence, number: int) -> list[str]:
    """The names (or "end") a step may lead to, in the order the file gives them."""
    step = sequence.steps[number]
    if step.then is not None:
        return list(dict.fromkeys(step.then.targets().values()))
    if step.next is not None:
        return [step.next]
    return [sequence.steps[number + 1].name if number + 1 < len(sequence.steps) else END]


def problems(sequence: Sequence) -> list[str]:
    """Unknown targets, steps no path reaches, cycles and paths that never end: one line each."""
    names = {step.name for step in sequence.steps}
    found: list[str] = []
    for number, step in enumerate(sequence.steps):
        for target in successors(sequence, number):
            if target != END and target not in names:
                found.append(
                    f"step {step.name!r} leads to {target!r}, which is no step of this sequence "
                    f'(name a step, or "end")'
                )
        if step.name == END:
            found.append(f'a step may not be called "{END}": that word ends the sequence')
    if found:
        return found
    graph = {step.name: successors(sequence, n) for n, step in enumerate(sequence.steps)}
    reached = _reachable(graph, sequence.steps[0].name)
    for step in sequence.steps:
        if step.name not in reached:
            found.append(
                f"step {step.name!r} is unreachable: no step leads to it (give the step before "
                f"it `next`, or name it in a branch)"
            )
    cycle = _cycle(graph, sequence.steps[0].name)
    ending = _ending(graph)
    stuck = [step.name for step in sequence.steps if step.name in reached - ending]
    if stuck and cycle:  # name a step of the loop itself
        stuck = [name for name in cycle if name in stuck] or stuck
    if stuck:
        found.append(
            f"a path never ends: from step {stuck[0]!r} no way leads to the end "
            f'({" -> ".join(cycle)}); some step on it must lead on, or to "end"'
        )
    elif cycle:
        found.append(
            "the steps loop: " + " -> ".join(cycle) + "; a step is sent at most once per "
            "enrollment, so no path may come back to a step"
        )
    return found


def _reachable(graph: dict[str, list[str]], first: str) -> set[str]:
    seen, pending = {first}, [first]
    while pending:
        for target in graph[pending.pop()]:
            if target != END and target not in seen:
                seen.add(target)
                pending.append(target)
    return seen


def _cycle(graph: dict[str, list[str]], first: str) -> list[str]:
    """A loop reachable from the first step, as the names around it; empty when there is none."""
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    path: list[str] = []

    def visit(name: str) -> list[str]:
        state[name] = 1
        path.append(name)
        for target in graph[name]:
            if target == END:
                continue
            if state.get(target) == 1:
                return [*path[path.index(target) :], target]
            if target not in state and (found := visit(target)):
                return found
        state[name] = 2
        path.pop()
        return []

    return visit(first)


def _ending(graph: dict[str, list[str]]) -> set[str]:
    """The steps from which some way leads to the end."""
    ending: set[str] = set()
    grew = True
    while grew:
        grew = False
        for name, targets in graph.items():
            if name not in ending and any(t == END or t in ending for t in targets):
                ending.add(name)
                grew = True
    return ending


def earliest(sequence: Sequence) -> list[timedelta]:
    """When each step goes out at the soonest, counted from enrollment along the ways through
    (a click or reply at the send, `otherwise` at its end): what a preview calls "day 16".
    Delays only; windows may move a send later. A step no way reaches reads as its file order."""
    paths = paths_of(sequence)
    soonest: dict[int, timedelta] = {}
    pending = [(0, sequence.steps[0].delay)]
    while pending:
        index, at = pending.pop()
        if index in soonest and soonest[index] <= at:
            continue
        soonest[index] = at
        decision, step = paths.decisions[index], sequence.steps[index]
        if decision is None:
            following = [(paths.following[index], at)]
        else:
            wait = step.then.within if step.then else timedelta(0)
            following = [
                (decision.target(event), at + (wait if event == "otherwise" else timedelta(0)))
                for event in (step.then.targets() if step.then else {})
            ]
        for target, base in following:
            if target is not None:  # a loop only comes back later: it stops there
                pending.append((target, base + sequence.steps[target].delay))
    linear, out = timedelta(0), []
    for index, step in enumerate(sequence.steps):
        linear += step.delay
        out.append(soonest.get(index, linear))
    return out


def span(duration: timedelta) -> str:
    """A branch's time as the TOML writes it: "2d", "1d12h", "90m" -> "1h30m"."""
    seconds = int(duration.total_seconds())
    days, rest = divmod(seconds, 86400)
    hours, minutes = rest // 3600, rest % 3600 // 60
    parts = (f"{days}d" * bool(days), f"{hours}h" * bool(hours), f"{minutes}m" * bool(minutes))
    return "".join(parts) or f"{seconds}s"


def describe(event: str, waits_for: set[str], within: timedelta) -> str:
    """What a way out of a branch means, in the staff's words."""
    time = span(within)
    if event == "clicked":
        return f"clicked the booking link within {time}"
    if event == "replied":
        return f"replied by text within {time}"
    if waits_for == {"clicked"}:
        return f"did not click within {time}"
    if waits_for == {"replied"}:
        return f"did not reply within {time}"
    return f"neither within {time}"
