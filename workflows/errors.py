"""Errors raised while loading and checking workflow specs.

Every error is a :class:`WorkflowError`. Messages are built in ``__init__`` from typed attributes and
always name the file and the YAML path, e.g. ``wf.yaml: spec.templates[1].steps[0][1].name: required``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

__all__ = ["Finding", "LintError", "SpecError", "SpecWarning", "WorkflowError"]


class WorkflowError(Exception):
    """Base class of every error raised by ``workflows``."""


class SpecError(WorkflowError):
    """A document cannot be read as a spec: bad YAML, an unknown kind, a missing or unknown field.

    ``loc`` is the YAML path (``spec.templates[1].steps[0][1].name``), or ``line:column`` for a YAML
    syntax error; ``value`` is the offending value when there is one.
    """

    def __init__(self, file: str, loc: str, reason: str, *, value: object = None) -> None:
        self.file = file
        self.loc = loc
        self.reason = reason
        self.value = value
        super().__init__(f"{file}: {loc}: {reason}" if loc else f"{file}: {reason}")


@dataclass(frozen=True)
class SpecWarning:
    """Something in a spec that loads fine but has no effect here (e.g. a Kubernetes-only field)."""

    file: str
    loc: str
    reason: str

    def __str__(self) -> str:
        return f"{self.file}: {self.loc}: {self.reason}"


@dataclass(frozen=True)
class Finding:
    """One problem found by lint, worded as Argo words it.

    ``loc`` is Argo's dotted path (``templates.main.steps[1].hello2``) and ``reason`` the rest, so
    ``message`` reads ``templates.main.steps[1].hello2 template name 'hell0' undefined``.
    """

    loc: str
    reason: str

    @property
    def message(self) -> str:
        """Argo's one-line form: the path, a space, the reason."""
        return f"{self.loc} {self.reason}" if self.loc else self.reason

    def __str__(self) -> str:
        return self.message


class LintError(WorkflowError):
    """A spec loads but is invalid (what ``argo lint`` rejects); nothing of it may run."""

    def __init__(self, file: str, findings: Sequence[Finding]) -> None:
        self.file = file
        self.findings = tuple(findings)
        lines = "\n".join(f"{file}: {finding.message}" for finding in self.findings)
        super().__init__(f"{len(self.findings)} linting errors found!\n{lines}")
