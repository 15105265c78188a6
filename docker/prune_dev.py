"""Image build stage: remove from the virtualenv what only development and tests need.

    python prune_dev.py [--dry-run] requirements.in TOOL...

requirements.txt pins the whole tree, tools included (test runner, linter, API fuzzer, load tester,
plotting). Every top-level requirement of requirements.in that is not one of the TOOLs is kept,
with everything it depends on; every other installed distribution is uninstalled. A tool added to
requirements.in but not named here merely stays in the image; a runtime dependency is never
removed, whatever the TOOLs share with it.
"""

from __future__ import annotations

import importlib.metadata as metadata
import re
import subprocess
import sys

from packaging.requirements import Requirement

#: what the virtualenv needs to stay a virtualenv
KEEP = {"pip", "setuptools", "wheel"}


def normalised(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def top_level(path: str, tools: set[str]) -> list[Requirement]:
    requirements = []
    with open(path) as handle:
        for line in handle:
            line = line.split("#", 1)[0].strip()
            if line and normalised(Requirement(line).name) not in tools:
                requirements.append(Requirement(line))
    return requirements


def closure(requirements: list[Requirement]) -> set[str]:
    """The distributions these requirements need, with their extras, transitively."""
    needed: set[str] = set()
    todo = [(requirement.name, frozenset(requirement.extras)) for requirement in requirements]
    while todo:
        name, extras = todo.pop()
        key = normalised(name)
        if key in needed and not extras:
            continue
        needed.add(key)
        try:
            distribution = metadata.distribution(name)
        except metadata.PackageNotFoundError:
            continue
        for raw in distribution.requires or []:
            requirement = Requirement(raw)
            environments = [{"extra": extra} for extra in extras] or [{"extra": ""}]
            if requirement.marker is None or any(requirement.marker.evaluate(env) for env in environments):
                todo.append((requirement.name, frozenset(requirement.extras)))
    return needed


def main(argv: list[str]) -> int:
    dry_run = bool(argv) and argv[0] == "--dry-run"
    if dry_run:
        argv = argv[1:]
    if not argv:
        print(__doc__, file=sys.stderr)
        return 2
    tools = {normalised(tool) for tool in argv[1:]}
    needed = closure(top_level(argv[0], tools)) | KEEP
    installed = {normalised(d.metadata["Name"]) for d in metadata.distributions()}
    remove = sorted(installed - needed)
    print(f"[prune-dev] removing {len(remove)} distributions: {' '.join(remove)}", file=sys.stderr)
    if remove and not dry_run:
        subprocess.run([sys.executable, "-m", "pip", "uninstall", "-y", "-q", *remove], check=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
