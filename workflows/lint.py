"""Static checks of a loaded spec, worded as Argo's validator words them (workflow/validate/validate.go).

``lint`` returns every problem it finds rather than stopping at the first. A finding's ``message``
reads like Argo's, e.g. ``templates.main.steps[1].hello2 template name 'hell0' undefined``.

Two seams are left open:

- ``templates_lookup`` resolves ``workflowTemplateRef`` and ``templateRef`` by name. Without it those
  references are not checked at all.
- ``expression_check`` checks the syntax of ``when``, ``depends`` and expr-lang expressions
  (``{{= ...}}`` tags, ``retryStrategy.expression``, hook and CronWorkflow expressions). The parsers live
  in ``workflows.expressions``; until one is plugged in, expressions are only scanned for names.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Literal, assert_never

from workflows.durations import parse_duration
from workflows.errors import Finding, LintError
from workflows.models import (
    Arguments,
    ClusterWorkflowTemplate,
    ConfigMap,
    CronWorkflow,
    DAGTask,
    ExecutorPlugin,
    KubernetesObject,
    LifecycleHook,
    Parameter,
    Resource,
    RetryStrategy,
    Template,
    TemplateRef,
    TemplateType,
    Workflow,
    WorkflowEventBinding,
    WorkflowSpec,
    WorkflowStep,
    WorkflowTemplate,
)
from workflows.placement import label_problem

__all__ = ["ExpressionCheck", "ExpressionKind", "TemplatesLookup", "check", "lint"]

#: Finds a (Cluster)WorkflowTemplate by ``metadata.name``; ``None`` when there is none.
TemplatesLookup = Callable[[str], WorkflowTemplate | ClusterWorkflowTemplate | None]

#: ``when``: govaluate after ``{{...}}`` substitution; ``depends``: DAG depends; ``expression``: expr-lang.
ExpressionKind = Literal["when", "depends", "expression"]

#: Returns why ``text`` is not a valid expression of that kind, or ``None`` when it is. ``text`` is given
#: as written: ``when`` still holds its ``{{...}}`` tags, ``{{= ...}}`` tags are passed without the braces.
ExpressionCheck = Callable[[str, ExpressionKind], str | None]

_TAG = re.compile(r"\{\{(.*?)\}\}", re.DOTALL)
_FIELD_NAME = re.compile(r"^[a-zA-Z0-9][-a-zA-Z0-9]*$")
_FIELD_NAME_MAX = 128
_FIELD_NAME_RULE = (
    "name must consist of alpha-numeric characters or '-', and must start with an alpha-numeric"
    " character (e.g. My-name1-2, 123-NAME)"
)
_PARAM_NAME = re.compile(r"^[-a-zA-Z0-9_]+$")
_PARAM_NAME_RULE = (
    "Parameter/Artifact name must consist of alpha-numeric characters, '_' or '-' e.g. my_param_1, MY-PARAM-1"
)
_DEPENDS_TERM = re.compile(r"([a-zA-Z0-9][-a-zA-Z0-9_]*)(?:\.([A-Za-z]+))?")
_ITEMS_RESULTS = frozenset({"AnySucceeded", "AllFailed"})
_RETRY_POLICIES = frozenset({"Always", "OnFailure", "OnError", "OnTransientError"})
_POD_GC_STRATEGIES = frozenset(
    {"OnPodCompletion", "OnPodSuccess", "OnWorkflowCompletion", "OnWorkflowSuccess"}
)
_CONCURRENCY_POLICIES = frozenset({"Allow", "Forbid", "Replace"})
_CRON_DESCRIPTORS = frozenset(
    {"@yearly", "@annually", "@monthly", "@weekly", "@daily", "@midnight", "@hourly"}
)
_TYPE_CHOICES = (
    "choose one of: container, containerSet, steps, script, resource, dag, suspend, http, plugin, data"
)
_VALUE_FROM_CHOICES = "choose one of: path, jqFilter, jsonPath, parameter, raw, expression"


def lint(
    resource: Resource,
    *,
    templates_lookup: TemplatesLookup | None = None,
    expression_check: ExpressionCheck | None = None,
) -> list[Finding]:
    """Every problem Argo's validator would report for ``resource`` (empty when it is valid)."""
    match resource:
        case Workflow():
            linter = _Linter(resource.spec, templates_lookup, expression_check, is_template=False)
            linter.metadata_name(resource.metadata.name, resource.metadata.generate_name, generate_ok=True)
            linter.placement(resource.metadata.labels, "metadata.labels")
            linter.workflow_spec()
        case WorkflowTemplate() | ClusterWorkflowTemplate():
            linter = _Linter(resource.spec, templates_lookup, expression_check, is_template=True)
            linter.metadata_name(resource.metadata.name, None, generate_ok=False)
            linter.workflow_spec()
        case CronWorkflow():
            linter = _Linter(
                resource.spec.workflow_spec, templates_lookup, expression_check, is_template=False
            )
            linter.metadata_name(resource.metadata.name, None, generate_ok=False)
            linter.cron(resource)
            linter.workflow_spec()
        case WorkflowEventBinding():
            linter = _Linter(WorkflowSpec(), templates_lookup, expression_check, is_template=True)
            linter.expression(resource.spec.event.selector, "expression", "spec.event.selector")
            if resource.spec.submit is not None:
                ref = resource.spec.submit.workflow_template_ref
                linter.holder(ref.name, bool(ref.cluster_scope), "spec.submit.workflowTemplateRef")
        case ExecutorPlugin():
            from workflows.executor.plugins import PluginError, PluginSpec

            where = "spec.sidecar.container"
            try:
                PluginSpec.from_container(resource.metadata.name or "plugin", resource.spec.sidecar.container, where)
            except PluginError as exc:
                return [Finding(where, str(exc).removeprefix(f"{where}: "))]
            return []
        case ConfigMap() | KubernetesObject():
            return []
        case _:
            assert_never(resource)
    return linter.findings


def check(
    resource: Resource,
    *,
    file: str,
    templates_lookup: TemplatesLookup | None = None,
    expression_check: ExpressionCheck | None = None,
) -> None:
    """Raise :class:`LintError` listing every finding of :func:`lint`, if there is any."""
    findings = lint(resource, templates_lookup=templates_lookup, expression_check=expression_check)
    if findings:
        raise LintError(file, findings)


@dataclass
class _Linter:
    """One pass over one spec; findings accumulate in order of discovery."""

    spec: WorkflowSpec
    lookup: TemplatesLookup | None
    expression_check: ExpressionCheck | None
    is_template: bool
    findings: list[Finding] = field(default_factory=list)

    def add(self, loc: str, reason: str) -> None:
        finding = Finding(loc, reason)
        if finding not in self.findings:
            self.findings.append(finding)

    # -- resource level -------------------------------------------------------------------------

    def metadata_name(self, name: str | None, generate_name: str | None, *, generate_ok: bool) -> None:
        if not name and not (generate_ok and generate_name):
            self.add("metadata", "name or generateName is required" if generate_ok else "name is required")

    def cron(self, cron: CronWorkflow) -> None:
        spec = cron.spec
        if spec.schedule and spec.schedules:
            self.add("spec", "cron workflow cannot have both 'schedule' (deprecated) and 'schedules'")
        if not spec.all_schedules:
            self.add("spec.schedules", "must contain at least one schedule")
        for schedule in spec.all_schedules:
            if problem := _cron_problem(schedule):
                self.add("spec.schedules", f"cron schedule {schedule!r} is malformed: {problem}")
        if spec.concurrency_policy and spec.concurrency_policy not in _CONCURRENCY_POLICIES:
            self.add(
                "spec.concurrencyPolicy", f"'{spec.concurrency_policy}' is not a valid concurrencyPolicy"
            )
        if spec.starting_deadline_seconds is not None and spec.starting_deadline_seconds < 0:
            self.add("spec.startingDeadlineSeconds", "must be positive")
        if spec.when:
            self.expression(spec.when, "expression", "spec.when")
        if spec.stop_strategy and spec.stop_strategy.expression:
            self.expression(spec.stop_strategy.expression, "expression", "spec.stopStrategy.expression")

    def workflow_spec(self) -> None:
        spec, templates = self.spec, self.spec.templates or []
        ref_spec = self.workflow_template_ref()
        self.names("spec.templates", [t.name for t in templates], params=False)
        args = spec.arguments or Arguments()
        self.arguments("spec.arguments", args, values_required=False)
        merged = _merge_arguments(args, ref_spec.arguments if ref_spec else None)
        entrypoint = spec.entrypoint or (ref_spec.entrypoint if ref_spec else None)
        if not entrypoint and not self.is_template and not (spec.workflow_template_ref and ref_spec is None):
            self.add("spec.entrypoint", "is required")
        if entrypoint:
            entry = self.find_template(entrypoint, ref_spec)
            if entry is None and (ref_spec is not None or spec.workflow_template_ref is None):
                self.add("spec.entrypoint", f"template name '{entrypoint}' undefined")
            if entry is not None and not self.is_template:
                self.supplied("spec.entrypoint", entry, merged)
        if spec.on_exit:
            exit_template = self.find_template(spec.on_exit, ref_spec)
            if exit_template is None and (ref_spec is not None or spec.workflow_template_ref is None):
                self.add("spec.onExit", f"template name '{spec.on_exit}' undefined")
            elif exit_template is not None and not self.is_template:
                self.supplied("spec.onExit", exit_template, merged)
        for hook_name, hook in (spec.hooks or {}).items():
            self.hook(hook, f"spec.hooks.{hook_name}")
        if spec.pod_gc and spec.pod_gc.strategy and spec.pod_gc.strategy not in _POD_GC_STRATEGIES:
            self.add("podGC.strategy", f"unknown strategy '{spec.pod_gc.strategy}'")
        self.retry(spec.retry_strategy, "spec")
        if spec.template_defaults is not None:
            self.retry(spec.template_defaults.retry_strategy, "spec.templateDefaults")
        for expression in (
            (spec.workflow_metadata.labels_from or {}).values() if spec.workflow_metadata else ()
        ):
            self.expression(expression.expression, "expression", "spec.workflowMetadata.labelsFrom")
        for index, template in enumerate(templates):
            self.template(template, f"templates.{template.name}" if template.name else f"templates[{index}]")

    def workflow_template_ref(self) -> WorkflowSpec | None:
        ref = self.spec.workflow_template_ref
        if ref is None:
            return None
        if self.spec.templates:
            self.add(
                "spec.templates", "is invalid field in spec if workflow referred WorkflowTemplate reference"
            )
        holder = self.holder(ref.name, bool(ref.cluster_scope), "spec.workflowTemplateRef")
        return holder.spec if holder is not None else None

    def holder(
        self, name: str, cluster_scope: bool, loc: str
    ) -> WorkflowTemplate | ClusterWorkflowTemplate | None:
        if self.lookup is None or not name or "{{" in name:
            return None
        found = self.lookup(name)
        if found is None:
            plural = "clusterworkflowtemplates" if cluster_scope else "workflowtemplates"
            self.add(loc, f'{plural}.argoproj.io "{name}" not found')
        return found

    def find_template(self, name: str, ref_spec: WorkflowSpec | None) -> Template | None:
        return self.spec.template(name) or (ref_spec.template(name) if ref_spec else None)

    # -- names, arguments, inputs ---------------------------------------------------------------

    def names(self, loc: str, names: list[str | None], *, params: bool) -> None:
        seen: set[str] = set()
        for index, name in enumerate(names):
            if not name:
                self.add(f"{loc}[{index}].name", "is required")
                continue
            if problem := (_param_name_problem(name) if params else _field_name_problem(name)):
                self.add(f"{loc}[{index}].name", f"'{name}' is invalid: {problem}")
            if name in seen:
                self.add(f"{loc}[{index}].name", f"'{name}' is not unique")
            seen.add(name)

    def arguments(self, loc: str, args: Arguments, *, values_required: bool) -> None:
        self.names(f"{loc}.parameters", [p.name for p in args.parameters or []], params=True)
        self.names(f"{loc}.artifacts", [a.name for a in args.artifacts or []], params=True)
        for param in args.parameters or []:
            if values_required and param.value is None and param.value_from is None:
                self.add(f"{loc}.{param.name}.value", "is required")
            self.enum(f"{loc}.{param.name}", param)
        for artifact in args.artifacts or [] if values_required else []:
            if artifact.from_ is None and artifact.from_expression is None and not artifact.has_location():
                self.add(f"{loc}.{artifact.name}", "from, artifact location, or key is required")
            if artifact.from_ is not None and artifact.from_expression is not None:
                self.add(f"{loc}.{artifact.name}", "should have either `from` or `fromExpression`")

    def enum(self, loc: str, param: Parameter) -> None:
        if param.enum is None:
            return
        if not param.enum:
            self.add(f"{loc}.enum", "should contain at least one value")
            return
        for key, value in (("value", param.value), ("default", param.default)):
            if value is not None and "{{" not in value and value not in param.enum:
                self.add(f"{loc}.{key}", f"should be present in {loc}.enum list")

    def supplied(self, loc: str, template: Template, args: Arguments | None) -> None:
        """Argo's ProcessArgs: every input without a value or default needs an argument."""
        args = args or Arguments()
        label = f"templates.{template.name}" if template.name else "inline template"
        for param in template.inputs.parameters or [] if template.inputs else []:
            if param.value is not None or param.default is not None or param.value_from is not None:
                continue
            given = args.parameter(param.name)
            if given is None or (given.value is None and given.value_from is None):
                self.add(loc, f"{label} inputs.parameters.{param.name} was not supplied")
        for artifact in template.inputs.artifacts or [] if template.inputs else []:
            if artifact.optional or artifact.has_location() or artifact.from_ or artifact.from_expression:
                continue
            if not any(a.name == artifact.name for a in args.artifacts or []):
                self.add(loc, f"{label} inputs.artifacts.{artifact.name} was not supplied")

    # -- templates ------------------------------------------------------------------------------

    def placement(self, labels: dict[str, str] | None, loc: str) -> None:
        problem = label_problem(labels)
        if problem is not None:
            self.add(loc, problem)

    def template(self, template: Template, label: str) -> None:
        if template.metadata is not None:
            self.placement(template.metadata.labels, f"{label}.metadata.labels")
        kinds = template.types
        if not kinds:
            self.add(label, f"template type unspecified. {_TYPE_CHOICES}")
        elif len(kinds) > 1:
            self.add(label, f"multiple template types specified. {_TYPE_CHOICES}")
        self.inputs(template, label)
        self.outputs(template, label)
        self.retry(template.retry_strategy, label)
        self.limits(template, label)
        if template.steps is not None:
            self.steps(template.steps, label)
        if template.dag is not None:
            self.dag(template, label)
        self.variables(template, label)

    def inputs(self, template: Template, label: str) -> None:
        inputs = template.inputs
        if inputs is None:
            return
        self.names(f"{label}.inputs.parameters", [p.name for p in inputs.parameters or []], params=True)
        self.names(f"{label}.inputs.artifacts", [a.name for a in inputs.artifacts or []], params=True)
        for param in inputs.parameters or []:
            self.enum(f"{label}.inputs.parameters.{param.name}", param)
        for artifact in inputs.artifacts or []:
            ref = f"{label}.inputs.artifacts.{artifact.name}"
            if template.is_leaf and not artifact.path:
                self.add(f"{ref}.path", "not specified")
            if template.type in (TemplateType.STEPS, TemplateType.DAG) and artifact.path:
                self.add(f"{ref}.path", "only valid in container/script templates")
            if artifact.from_ or artifact.from_expression:
                self.add(f"{ref}.from", "not valid in inputs")

    def outputs(self, template: Template, label: str) -> None:
        outputs = template.outputs
        if outputs is None:
            return
        self.names(f"{label}.outputs.parameters", [p.name for p in outputs.parameters or []], params=True)
        self.names(f"{label}.outputs.artifacts", [a.name for a in outputs.artifacts or []], params=True)
        kind = template.type
        for param in outputs.parameters or []:
            ref = f"{label}.outputs.parameters.{param.name}"
            self.output_parameter(ref, param, kind)
            if (
                param.global_name
                and "{{" not in param.global_name
                and (problem := _param_name_problem(param.global_name))
            ):
                self.add(f"{ref}.globalName", problem)
        for artifact in outputs.artifacts or []:
            ref = f"{label}.outputs.artifacts.{artifact.name}"
            if template.is_leaf and not artifact.path:
                self.add(f"{ref}.path", "not specified")
            if kind in (TemplateType.STEPS, TemplateType.DAG) and artifact.path:
                self.add(f"{ref}.path", "only valid in container/script templates")

    def output_parameter(self, ref: str, param: Parameter, kind: TemplateType | None) -> None:
        value_from = param.value_from
        if value_from is not None and param.value is not None:
            self.add(ref, "has both valueFrom and value specified. Choose one.")
        if value_from is None:
            if param.value is None:
                self.add(ref, "does not have valueFrom or value specified")
            return
        sources = [s for s in value_from.sources() if s not in ("event", "configMapKeyRef")]
        if not sources:
            self.add(ref, f"valueFrom type unspecified. {_VALUE_FROM_CHOICES}")
        elif len(sources) > 1:
            self.add(ref, f"multiple valueFrom types specified. {_VALUE_FROM_CHOICES}")
        if (
            kind in (TemplateType.CONTAINER, TemplateType.SCRIPT, TemplateType.CONTAINER_SET)
            and not value_from.path
        ):
            self.add(f"{ref}.path", f"must be specified for {kind.value} templates")
        if kind is TemplateType.RESOURCE and not (value_from.jq_filter or value_from.json_path):
            self.add(ref, "jqFilter or jsonPath must be specified for resource templates")
        if kind in (TemplateType.STEPS, TemplateType.DAG) and not (
            value_from.parameter or value_from.expression
        ):
            self.add(f"{ref}.parameter", f"or expression must be specified for {kind.value} templates")
        if value_from.expression:
            self.expression(value_from.expression, "expression", f"{ref}.valueFrom.expression")

    def retry(self, retry: RetryStrategy | None, label: str) -> None:
        if retry is None:
            return
        if retry.retry_policy and retry.retry_policy not in _RETRY_POLICIES:
            self.add(f"{label}.retryStrategy.retryPolicy", f"{retry.retry_policy} is not a valid RetryPolicy")
        if _negative_or_invalid(retry.limit):
            self.add(
                f"{label}.retryStrategy.limit",
                f"must be a non-negative integer or an argo variable, got {retry.limit!r}",
            )
        if retry.expression:
            self.expression(retry.expression, "expression", f"{label}.retryStrategy.expression")
        backoff = retry.backoff
        if backoff is not None:
            for name, value in (("duration", backoff.duration), ("maxDuration", backoff.max_duration), ("cap", backoff.cap)):
                if value is not None and not _is_duration(value):
                    self.add(f"{label}.retryStrategy.backoff.{name}", f"invalid duration {value!r}, e.g. '30s' or 10")
            factor = backoff.factor
            if factor is not None and "{{" not in str(factor):
                try:
                    if float(factor) < 0:
                        raise ValueError
                except ValueError:
                    self.add(f"{label}.retryStrategy.backoff.factor", f"must be a non-negative number, got {factor!r}")

    def limits(self, template: Template, label: str) -> None:
        kind = template.type
        if kind is None:
            return
        if template.timeout and not template.is_leaf:
            self.add(label, f"{kind.value} template doesn't support timeout field.")
        if template.timeout and template.timeout.strip().isdigit():
            self.add(f"{label}.timeout", f"has invalid duration format {template.timeout!r}, e.g. '30s'")
        if template.active_deadline_seconds is not None:
            if not template.is_leaf:
                self.add(f"{label}.activeDeadlineSeconds", "is only valid for leaf templates")
            elif _negative_or_invalid(template.active_deadline_seconds):
                self.add(
                    f"{label}.activeDeadlineSeconds", "must be a positive integer > 0 or an argo variable"
                )
        if template.parallelism is not None and kind not in (TemplateType.STEPS, TemplateType.DAG):
            self.add(f"{label}.parallelism", "is only valid for steps and dag templates")
        defaults = self.spec.template_defaults
        default_image = defaults.main_container.image if defaults and defaults.main_container else None
        main = template.main_container
        if main is not None and not main.image and not default_image:
            self.add(f"{label}.{kind.value}.image", "may not be empty")

    # -- steps and DAGs -------------------------------------------------------------------------

    def steps(self, groups: list[list[WorkflowStep]], label: str) -> None:
        seen: set[str] = set()
        for index, group in enumerate(groups):
            for step in group:
                if problem := _field_name_problem(step.name):
                    self.add(f"{label}.steps[{index}].name", f"'{step.name}' is invalid: {problem}")
                if step.name in seen:
                    self.add(f"{label}.steps[{index}].name", f"'{step.name}' is not unique")
                seen.add(step.name)
                self.call(step, f"{label}.steps[{index}].{step.name}")

    def dag(self, template: Template, label: str) -> None:
        assert template.dag is not None  # only called for DAG templates
        tasks = template.dag.tasks
        if not tasks:
            self.add(label, "must have at least one task")
        self.names(f"{label}.tasks", [t.name for t in tasks], params=False)
        by_name = {task.name: task for task in tasks}
        using_depends = any(task.depends for task in tasks)
        graph: dict[str, list[str]] = {}
        for task in tasks:
            loc = f"{label}.tasks.{task.name}"
            if task.name[:1].isdigit():
                self.add(loc, "name cannot begin with a digit when using either 'depends' or 'dependencies'")
            if using_depends and task.dependencies:
                self.add(label, "cannot use both 'depends' and 'dependencies' in the same DAG template")
            if using_depends and task.continue_on is not None:
                self.add(
                    label,
                    "cannot use 'continueOn' when using 'depends'. Instead use 'dep-task.Failed'/'dep-task.Errored'",
                )
            graph[task.name] = self.task_dependencies(task, by_name, loc)
            self.call(task, loc)
        if cycle := _find_cycle(graph):
            self.add(f"{label}.tasks", f"dependency cycle detected: {'->'.join(cycle)}")
        for target in (template.dag.target or "").split():
            if "{{" not in target and target not in by_name:
                self.add(f"{label}.targets", f"target '{target}' is not defined")

    def task_dependencies(self, task: DAGTask, by_name: dict[str, DAGTask], loc: str) -> list[str]:
        if task.depends:
            self.expression(task.depends, "depends", f"{loc}.depends")
        pairs = [(d, None) for d in task.dependencies or []] + depends_terms(task.depends or "")
        names: list[str] = []
        for name, result in pairs:
            dependency = by_name.get(name)
            if dependency is None:
                self.add(loc, f"dependency '{name}' not defined")
                continue
            if result in _ITEMS_RESULTS and not _has_loop(dependency):
                self.add(
                    loc,
                    f"dependency '{name}' uses an items-based condition such as .AnySucceeded or .AllFailed"
                    " but does not contain any items",
                )
            if name not in names:
                names.append(name)
        return names

    def call(self, step: WorkflowStep, loc: str) -> None:
        """A step or DAG task: its loop, its arguments, the template it calls and its hooks."""
        loops = [bool(step.with_items), bool(step.with_param), step.with_sequence is not None]
        if sum(loops) > 1:
            self.add(loc, "only one of withItems, withParam, withSequence can be specified")
        if step.with_sequence and step.with_sequence.count is not None and step.with_sequence.end is not None:
            self.add(loc, "only one of count or end can be defined in withSequence")
        self.arguments(f"{loc}.arguments", step.arguments or Arguments(), values_required=True)
        if step.when:
            self.expression(step.when, "when", f"{loc}.when")
        called = self.resolve(step.template, step.template_ref, step.inline, loc)
        if called is not None:
            self.supplied(loc, called, step.arguments)
        if step.inline is not None:
            self.template(step.inline, f"{loc}.inline")
        if step.on_exit and self.spec.template(step.on_exit) is None:
            self.add(f"{loc}.onExit", f"template name '{step.on_exit}' undefined")
        for hook_name, hook in (step.hooks or {}).items():
            self.hook(hook, f"{loc}.hooks.{hook_name}")

    def hook(self, hook: LifecycleHook, loc: str) -> None:
        if hook.expression:
            self.expression(hook.expression, "expression", f"{loc}.expression")
        called = self.resolve(hook.template, hook.template_ref, None, loc)
        if called is not None:
            self.supplied(loc, called, hook.arguments)

    def resolve(
        self, name: str | None, ref: TemplateRef | None, inline: Template | None, loc: str
    ) -> Template | None:
        """The template a call site invokes, reporting why it cannot be found."""
        if name and ref is not None:
            self.add(loc, "template name cannot be specified with templateRef.")
            return None
        if inline is not None:
            if name or ref is not None:
                self.add(loc, "inline template cannot be specified with template or templateRef.")
            return inline
        if name:
            if "{{" in name:
                return None
            found = self.spec.template(name)
            if found is None and self.spec.workflow_template_ref is None:
                self.add(loc, f"template name '{name}' undefined")
            return found
        if ref is None:
            self.add(loc, "template name, templateRef or inline is required")
            return None
        if not ref.name:
            self.add(loc, "resource name is required")
        if not ref.template:
            self.add(loc, "template name is required")
        if not ref.name or not ref.template or "{{" in ref.template:
            return None
        holder = self.holder(ref.name, bool(ref.cluster_scope), loc)
        found = holder.spec.template(ref.template) if holder is not None else None
        if holder is not None and found is None:
            self.add(loc, f"template reference {ref.name}.{ref.template} not found")
        return found

    # -- variables and expressions --------------------------------------------------------------

    def variables(self, template: Template, label: str) -> None:
        """``{{...}}`` references a template makes to inputs, parameters, steps and tasks it lacks."""
        scope = _Scope.of(
            template, self.spec, ref_or_template=self.is_template or bool(self.spec.workflow_template_ref)
        )
        for text in _strings(_own_content(template)):
            for match in _TAG.finditer(text):
                tag = match.group(1).strip()
                if tag.startswith("="):
                    self.expression(tag[1:].strip(), "expression", label)
                elif not scope.resolves(tag):
                    self.add(label, f"failed to resolve {{{{{tag}}}}}")

    def expression(self, text: str, kind: ExpressionKind, loc: str) -> None:
        """The hook for ``workflows.expressions``: report ``text`` if the plugged-in check rejects it."""
        if self.expression_check is None:
            return
        if (problem := self.expression_check(text, kind)) is not None:
            self.add(loc, f"invalid {kind} expression {text!r}: {problem}")


@dataclass(frozen=True)
class _Scope:
    """The names a template may reference; ``None`` means "not checked"."""

    parameters: frozenset[str]
    artifacts: frozenset[str]
    workflow_parameters: frozenset[str] | None
    steps: frozenset[str] | None
    tasks: frozenset[str] | None
    # Output artifacts each step/task's template declares (None: its template is not known here).
    produced: dict[str, frozenset[str] | None] = field(default_factory=dict)

    @classmethod
    def of(cls, template: Template, spec: WorkflowSpec, *, ref_or_template: bool) -> _Scope:
        """``ref_or_template``: workflow parameters come from elsewhere (a referencing Workflow, an event)."""
        inputs = template.inputs
        workflow = (
            None
            if ref_or_template
            else frozenset(p.name for p in (spec.arguments or Arguments()).parameters or [])
        )
        return cls(
            parameters=frozenset(p.name for p in inputs.parameters or []) if inputs else frozenset(),
            artifacts=frozenset(a.name for a in inputs.artifacts or []) if inputs else frozenset(),
            workflow_parameters=workflow,
            steps=frozenset(s.name for group in template.steps for s in group)
            if template.steps is not None
            else frozenset(),
            tasks=frozenset(t.name for t in template.dag.tasks) if template.dag is not None else frozenset(),
            produced={
                call.name: _declared_artifacts(spec, call)
                for call in [*(s for group in template.steps or [] for s in group), *(template.dag.tasks if template.dag else [])]
            },
        )

    def resolves(self, tag: str) -> bool:
        head, _, rest = tag.partition(".")
        name = rest.split(".", 1)[0]
        match head:
            case "inputs" if rest == "parameters":
                return bool(self.parameters)
            case "inputs" if rest.startswith("parameters."):
                return rest.removeprefix("parameters.") in self.parameters
            case "inputs" if rest.startswith("artifacts."):
                return rest.removeprefix("artifacts.").split(".", 1)[0] in self.artifacts
            case "workflow" if rest.startswith("parameters.") and self.workflow_parameters is not None:
                return (
                    rest in ("parameters.json",)
                    or rest.removeprefix("parameters.") in self.workflow_parameters
                )
            case "steps" if self.steps is not None:
                return (rest == "name" or name in self.steps) and self._artifact_known(rest)
            case "tasks" if self.tasks is not None:
                return (rest == "name" or name in self.tasks) and self._artifact_known(rest)
            case _:
                return True


    def _artifact_known(self, rest: str) -> bool:
        """``X.outputs.artifacts.Y``: whether X's template declares Y (True when that is not known)."""
        name, _, tail = rest.partition(".outputs.artifacts.")
        if not tail:
            return True
        declared = self.produced.get(name)
        return declared is None or tail.split(".", 1)[0] in declared


def _declared_artifacts(spec: WorkflowSpec, call: WorkflowStep | DAGTask) -> frozenset[str] | None:
    called = call.inline if call.inline is not None else spec.template(call.template) if call.template and "{{" not in call.template else None
    if called is None:
        return None
    return frozenset(a.name for a in ((called.outputs.artifacts or []) if called.outputs else []))


def depends_terms(depends: str) -> list[tuple[str, str | None]]:
    """``(task, result)`` pairs named by a ``depends`` expression: ``"A && B.Failed"`` → A, (B, Failed)."""
    return [(m.group(1), m.group(2)) for m in _DEPENDS_TERM.finditer(depends)]


def _field_name_problem(name: str) -> str | None:
    if len(name) > _FIELD_NAME_MAX:
        return f"must be no more than {_FIELD_NAME_MAX} characters"
    return None if _FIELD_NAME.match(name) else _FIELD_NAME_RULE


def _param_name_problem(name: str) -> str | None:
    return None if _PARAM_NAME.match(name) else _PARAM_NAME_RULE


def _negative_or_invalid(value: int | str | None) -> bool:
    if value is None or (isinstance(value, str) and "{{" in value):
        return False
    try:
        return int(value) < 0
    except ValueError:
        return True


def _has_loop(step: WorkflowStep) -> bool:
    return bool(step.with_items) or bool(step.with_param) or step.with_sequence is not None


def _merge_arguments(own: Arguments, inherited: Arguments | None) -> Arguments:
    """The workflow's arguments over those of the referenced WorkflowTemplate (same name wins)."""
    if inherited is None:
        return own
    names = {p.name for p in own.parameters or []}
    parameters = [*(own.parameters or []), *(p for p in inherited.parameters or [] if p.name not in names)]
    return Arguments(parameters=parameters, artifacts=[*(own.artifacts or []), *(inherited.artifacts or [])])


def _find_cycle(graph: dict[str, list[str]]) -> list[str] | None:
    """The first dependency cycle, as ``[a, b, a]`` (a depends on b depends on a), in task order."""
    done: set[str] = set()
    for start, dependencies in graph.items():
        if start in done:
            continue
        path, on_path = [start], {start}
        stack: list[tuple[str, Iterator[str]]] = [(start, iter(dependencies))]
        while stack:
            node, edges = stack[-1]
            child = next(edges, None)
            if child is None:
                stack.pop()
                path.pop()
                on_path.discard(node)
                done.add(node)
            elif child in on_path:
                return [*path[path.index(child) :], child]
            elif child not in done:
                path.append(child)
                on_path.add(child)
                stack.append((child, iter(graph.get(child, []))))
    return None


def _own_content(template: Template) -> object:
    """The template as YAML data, without the inline templates of its steps (they are linted alone)."""
    data = template.model_dump(by_alias=True, exclude_none=True)
    for group in data.get("steps", []):
        for step in group:
            step.pop("inline", None)
    for task in data.get("dag", {}).get("tasks", []):
        task.pop("inline", None)
    return data


def _strings(value: object) -> Iterator[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for item in value.values():
            yield from _strings(item)
    elif isinstance(value, list):
        for item in value:
            yield from _strings(item)


def _cron_problem(schedule: str) -> str | None:
    """A minimal cron syntax check (robfig/cron ParseStandard): 5 fields, or a descriptor."""
    text = schedule.strip()
    if text.startswith(("CRON_TZ=", "TZ=")):
        text = text.partition(" ")[2].strip()
    if text in _CRON_DESCRIPTORS or text.startswith("@every "):
        return None
    fields = text.split()
    if len(fields) != 5:
        return f"expected exactly 5 fields, found {len(fields)}"
    bad = [f for f in fields if not re.fullmatch(r"[0-9A-Za-z*?/,\-]+", f)]
    return f"invalid field {bad[0]!r}" if bad else None


def _is_duration(value: object) -> bool:
    """A Go-style duration or a number of seconds; templated values are checked when they resolve."""
    text = str(value)
    if "{{" in text:
        return True
    try:
        parse_duration(text)
    except ValueError:
        return False
    return True
