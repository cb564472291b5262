"""A scheduler harness for unit tests: hosts held in memory, every placement recorded.

``Harness(hosts).run(needs, count)`` places ``count`` tasks through :func:`runner.scheduler.place`
(the path RunTask and services use), charges them to the in-memory hosts, and appends one
:class:`Step` per task to ``plan`` (host id, or the failure reason). Later runs see what
earlier runs placed, as the store's usage would.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

from runner import scheduler
from runner.scheduler import HostView, NoHostFits, Placement, TaskNeeds, TaskView


@dataclass(frozen=True)
class Step:
    task: str
    host: str | None  # None: it fit nowhere
    reason: str = ""  # NoHostFits.reason when host is None


@dataclass
class Harness:
    hosts: dict[str, HostView]
    plan: list[Step] = field(default_factory=list)
    seed: int = 0

    @classmethod
    def of(cls, *hosts: HostView, seed: int = 0) -> Harness:
        return cls({h.id: h for h in hosts}, seed=seed)

    def run(self, needs: TaskNeeds, count: int = 1) -> list[Step]:
        placed = scheduler.place(list(self.hosts.values()), needs, count, seed=self.seed)
        steps = []
        for result in placed.results:
            task = f"t{len(self.plan) + len(steps)}"
            if isinstance(result, Placement):
                h = self.hosts[result.host_id]
                self.hosts[h.id] = replace(
                    h,
                    cpu=h.cpu - needs.cpu,
                    memory=h.memory - needs.memory,
                    ports=h.ports | frozenset(needs.ports),
                    tasks=(*h.tasks, TaskView(task, needs.group)),
                )
                steps.append(Step(task, h.id))
            else:
                assert isinstance(result, NoHostFits)
                steps.append(Step(task, None, result.reason))
        self.plan.extend(steps)
        return steps

    def hosts_used(self) -> list[str | None]:
        return [s.host for s in self.plan]
