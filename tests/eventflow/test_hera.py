"""Hera 7, unpatched, against a real `eventflow serve` (embedded NATS, SQLite): workflows built with Hera's
decorators and context managers are submitted, waited for and read through its WorkflowsService."""

# No `from __future__ import annotations`: Hera reads the script functions' annotations as real types.

import uuid
from collections.abc import Iterator

import pytest
from hera.exceptions import NotFound
from hera.workflows import DAG, Parameter, Steps, Workflow, WorkflowsService, WorkflowTemplate, script
from hera.workflows import models as m

from tests.support.server_proc import ServerProcess

pytestmark = [
    pytest.mark.nats,
    # Hera 7 serialises requests with pydantic's deprecated `.json()`; the warning is Hera's, not ours.
    pytest.mark.filterwarnings("ignore::pydantic.warnings.PydanticDeprecatedSince20:hera.*"),
]

NAMESPACE = "default"
POLL = 0.05  # Hera's wait() polls get_workflow this often; the test's timeout is the deadline


@pytest.fixture
def service(server: ServerProcess) -> Iterator[WorkflowsService]:
    with WorkflowsService(host=server.base_url, verify_ssl=False, token=None, namespace=NAMESPACE) as svc:
        yield svc


# Hera turns each function into a script template; here it runs as a local `python` process.
@script(outputs=[Parameter(name="doubled", value_from=m.ValueFrom(path="/tmp/doubled"))])
def double(n: int) -> None:
    with open("/tmp/doubled", "w") as fh:
        fh.write(str(n * 2))


@script(outputs=[Parameter(name="sentence", value_from=m.ValueFrom(path="/tmp/sentence"))])
def describe(value: str) -> None:
    with open("/tmp/sentence", "w") as fh:
        fh.write(f"the answer is {value}")


@script()
def greet(name: str) -> None:
    print(f"hello {name}")


def _node(workflow: m.Workflow, display_name: str) -> m.NodeStatus:
    assert workflow.status is not None and workflow.status.nodes is not None
    return next(n for n in workflow.status.nodes.values() if n.display_name == display_name)


def _parameter(node: m.NodeStatus, name: str) -> str | None:
    assert node.outputs is not None and node.outputs.parameters is not None
    return next(p.value for p in node.outputs.parameters if p.name == name)


@pytest.mark.timeout(30)
def test_hera_dag_of_scripts_succeeds_and_passes_output_parameter(service: WorkflowsService) -> None:
    with (
        Workflow(
            generate_name="hera-dag-", entrypoint="main", namespace=NAMESPACE, workflows_service=service
        ) as w,
        DAG(name="main"),
    ):
        first = double(arguments={"n": 21})
        second = describe(arguments={"value": first.get_parameter("doubled")})
        first >> second

    created = w.create()
    assert created.metadata.name is not None and created.metadata.name.startswith("hera-dag-")
    assert w.name == created.metadata.name

    done = w.wait(poll_interval=POLL)  # type: ignore[arg-type]  # Hera types it int; time.sleep takes a float

    assert done.status is not None and done.status.phase == "Succeeded"
    assert _parameter(_node(done, "double"), "doubled") == "42"
    assert _parameter(_node(done, "describe"), "sentence") == "the answer is 42"
    root = _node(done, done.metadata.name or "")
    assert root.type == "DAG" and root.phase == "Succeeded"
    assert done.status.started_at is not None and done.status.finished_at is not None


@pytest.mark.timeout(30)
def test_hera_workflow_template_submitted_two_ways_succeeds(service: WorkflowsService) -> None:
    name = f"hera-greet-{uuid.uuid4().hex[:6]}"
    with (
        WorkflowTemplate(
            name=name,
            entrypoint="main",
            namespace=NAMESPACE,
            workflows_service=service,
            arguments={"who": "world"},
        ) as wt,
        Steps(name="main"),
    ):
        greet(arguments={"name": "{{workflow.parameters.who}}"})

    assert wt.create().metadata.name == name
    assert wt.lint().metadata.name == name
    assert wt.get().metadata.name == name

    # 1. Argo's submit-from-template path, with a parameter override and a label.
    submitted = service.submit_workflow(
        m.WorkflowSubmitRequest(
            resource_kind="WorkflowTemplate",
            resource_name=name,
            submit_options=m.SubmitOpts(parameters=["who=hera"], labels="via=submit"),
        )
    )
    assert submitted.metadata.name is not None and submitted.metadata.name.startswith(f"{name}-")
    assert submitted.metadata.labels is not None
    assert submitted.metadata.labels["workflows.argoproj.io/workflow-template"] == name
    by_submit = Workflow(name=submitted.metadata.name, namespace=NAMESPACE, workflows_service=service)
    done = by_submit.wait(poll_interval=POLL)  # type: ignore[arg-type]
    assert done.status is not None and done.status.phase == "Succeeded"
    greeting = _node(done, "greet")
    assert greeting.outputs is not None and greeting.outputs.result == "hello hera"

    # 2. A Hera Workflow that references the template.
    by_ref = Workflow(
        generate_name="hera-ref-",
        namespace=NAMESPACE,
        workflows_service=service,
        workflow_template_ref=m.WorkflowTemplateRef(name=name),
    )
    by_ref.create()
    done = by_ref.wait(poll_interval=POLL)  # type: ignore[arg-type]
    assert done.status is not None and done.status.phase == "Succeeded"
    greeting = _node(done, "greet")
    assert greeting.outputs is not None and greeting.outputs.result == "hello world"


@pytest.mark.timeout(30)
def test_hera_get_and_list_workflows_with_selectors_and_fields(service: WorkflowsService) -> None:
    label = uuid.uuid4().hex[:8]
    names = []
    for i in range(3):
        with (
            Workflow(
                generate_name="hera-list-",
                entrypoint="main",
                namespace=NAMESPACE,
                workflows_service=service,
                labels={"batch": label},
            ) as w,
            Steps(name="main"),
        ):
            greet(arguments={"name": str(i)})
        names.append(w.create().metadata.name)

    listed = service.list_workflows(label_selector=f"batch={label}")
    assert sorted(wf.metadata.name or "" for wf in listed.items) == sorted(names)
    assert service.list_workflows(label_selector=f"batch={label},batch!={label}").items == []

    # Argo's `fields` cuts each item down; the objects clients require stay.
    slim = service.list_workflows(
        label_selector=f"batch={label}", fields="metadata,items.metadata.name,items.status.phase"
    )
    assert {wf.metadata.name for wf in slim.items} == set(names)
    assert all(wf.metadata.labels is None and wf.spec.templates is None for wf in slim.items)

    # Paging: listOptions.limit and the continue token the response carries.
    first = service.list_workflows(label_selector=f"batch={label}", limit="2")
    assert len(first.items) == 2 and first.metadata.continue_ is not None
    rest = service.list_workflows(
        label_selector=f"batch={label}", limit="2", continue_=first.metadata.continue_
    )
    assert len(rest.items) == 1 and rest.metadata.continue_ is None
    assert {wf.metadata.name for wf in first.items + rest.items} == set(names)

    got = service.get_workflow(names[0])
    assert (
        got.metadata.name == names[0]
        and got.metadata.labels is not None
        and got.metadata.labels["batch"] == label
    )
    assert got.spec.entrypoint == "main"
    assert got.metadata.creation_timestamp is not None
    phase_only = service.get_workflow(names[0], fields="metadata.name,status.phase")
    assert (
        phase_only.metadata.name == names[0]
        and phase_only.metadata.uid is None
        and phase_only.spec.entrypoint is None
    )

    with pytest.raises(NotFound, match="not found"):
        service.get_workflow("no-such-workflow")


def test_hera_info_and_version_are_argo_shaped(service: WorkflowsService) -> None:
    info = service.get_info()
    assert info.links == [] and info.managed_namespace is None
    version = service.get_version()
    assert version.version.startswith("v") and version.build_date.endswith("Z")
    assert version.platform.count("/") == 1
