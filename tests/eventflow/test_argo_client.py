"""The generated `argo_workflows` client (6.x), unpatched, against a real `eventflow serve` (embedded NATS,
SQLite). The client checks every response against Argo's swagger models (types, required fields,
datetimes), so each call here also checks that our JSON is Argo-shaped."""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Iterator
from datetime import datetime

import argo_workflows
import pytest
from argo_workflows.api.info_service_api import InfoServiceApi
from argo_workflows.api.workflow_service_api import WorkflowServiceApi
from argo_workflows.api.workflow_template_service_api import WorkflowTemplateServiceApi
from argo_workflows.exceptions import ApiException, NotFoundException
from argo_workflows.model.container import Container
from argo_workflows.model.io_argoproj_workflow_v1alpha1_arguments import IoArgoprojWorkflowV1alpha1Arguments
from argo_workflows.model.io_argoproj_workflow_v1alpha1_dag_task import IoArgoprojWorkflowV1alpha1DAGTask
from argo_workflows.model.io_argoproj_workflow_v1alpha1_dag_template import (
    IoArgoprojWorkflowV1alpha1DAGTemplate,
)
from argo_workflows.model.io_argoproj_workflow_v1alpha1_inputs import IoArgoprojWorkflowV1alpha1Inputs
from argo_workflows.model.io_argoproj_workflow_v1alpha1_outputs import IoArgoprojWorkflowV1alpha1Outputs
from argo_workflows.model.io_argoproj_workflow_v1alpha1_parameter import IoArgoprojWorkflowV1alpha1Parameter
from argo_workflows.model.io_argoproj_workflow_v1alpha1_retry_strategy import (
    IoArgoprojWorkflowV1alpha1RetryStrategy,
)
from argo_workflows.model.io_argoproj_workflow_v1alpha1_submit_opts import (
    IoArgoprojWorkflowV1alpha1SubmitOpts,
)
from argo_workflows.model.io_argoproj_workflow_v1alpha1_template import IoArgoprojWorkflowV1alpha1Template
from argo_workflows.model.io_argoproj_workflow_v1alpha1_value_from import IoArgoprojWorkflowV1alpha1ValueFrom
from argo_workflows.model.io_argoproj_workflow_v1alpha1_workflow import IoArgoprojWorkflowV1alpha1Workflow
from argo_workflows.model.io_argoproj_workflow_v1alpha1_workflow_create_request import (
    IoArgoprojWorkflowV1alpha1WorkflowCreateRequest,
)
from argo_workflows.model.io_argoproj_workflow_v1alpha1_workflow_spec import (
    IoArgoprojWorkflowV1alpha1WorkflowSpec,
)
from argo_workflows.model.io_argoproj_workflow_v1alpha1_workflow_submit_request import (
    IoArgoprojWorkflowV1alpha1WorkflowSubmitRequest,
)
from argo_workflows.model.io_argoproj_workflow_v1alpha1_workflow_template import (
    IoArgoprojWorkflowV1alpha1WorkflowTemplate,
)
from argo_workflows.model.io_argoproj_workflow_v1alpha1_workflow_template_create_request import (
    IoArgoprojWorkflowV1alpha1WorkflowTemplateCreateRequest,
)
from argo_workflows.model.object_meta import ObjectMeta

from tests.support.poll import eventually_sync
from tests.support.server_proc import ServerProcess

pytestmark = pytest.mark.nats

NAMESPACE = "default"
DONE = ("Succeeded", "Failed", "Error")


@pytest.fixture(scope="module")
def client(server: ServerProcess) -> Iterator[argo_workflows.ApiClient]:
    with argo_workflows.ApiClient(argo_workflows.Configuration(host=server.base_url)) as api_client:
        yield api_client


@pytest.fixture
def api(client: argo_workflows.ApiClient) -> WorkflowServiceApi:
    return WorkflowServiceApi(client)


def _echo(name: str, text: str) -> IoArgoprojWorkflowV1alpha1Template:
    return IoArgoprojWorkflowV1alpha1Template(
        name=name, container=Container(image="alpine", command=["sh", "-c", f"echo {text}"])
    )


def _workflow(generate_name: str, labels: dict[str, str] | None = None) -> IoArgoprojWorkflowV1alpha1Workflow:
    return IoArgoprojWorkflowV1alpha1Workflow(
        metadata=ObjectMeta(generate_name=generate_name, labels=labels or {}),
        spec=IoArgoprojWorkflowV1alpha1WorkflowSpec(entrypoint="say", templates=[_echo("say", "hi")]),
    )


def _create(
    api: WorkflowServiceApi, workflow: IoArgoprojWorkflowV1alpha1Workflow, **kwargs: object
) -> IoArgoprojWorkflowV1alpha1Workflow:
    body = IoArgoprojWorkflowV1alpha1WorkflowCreateRequest(workflow=workflow, **kwargs)
    created: IoArgoprojWorkflowV1alpha1Workflow = api.create_workflow(NAMESPACE, body)
    return created


def _wait_done(api: WorkflowServiceApi, name: str) -> IoArgoprojWorkflowV1alpha1Workflow:
    latest: list[IoArgoprojWorkflowV1alpha1Workflow] = []

    def done() -> bool:
        latest[:] = [api.get_workflow(NAMESPACE, name)]
        return latest[0].status.get("phase") in DONE

    eventually_sync(done, timeout=20, what=f"workflow {name} done")
    return latest[0]


def test_argo_client_create_and_get_typed_dag_status(api: WorkflowServiceApi) -> None:
    produce = IoArgoprojWorkflowV1alpha1Template(
        name="produce",
        container=Container(image="alpine", command=["sh", "-c", "echo -n 42 > /tmp/n"]),
        outputs=IoArgoprojWorkflowV1alpha1Outputs(
            parameters=[
                IoArgoprojWorkflowV1alpha1Parameter(
                    name="n", value_from=IoArgoprojWorkflowV1alpha1ValueFrom(path="/tmp/n")
                )
            ]
        ),
    )
    show = IoArgoprojWorkflowV1alpha1Template(
        name="show",
        inputs=IoArgoprojWorkflowV1alpha1Inputs(parameters=[IoArgoprojWorkflowV1alpha1Parameter(name="n")]),
        container=Container(image="alpine", command=["sh", "-c", "echo got {{inputs.parameters.n}}"]),
        retry_strategy=IoArgoprojWorkflowV1alpha1RetryStrategy(limit="1"),
    )
    n_arg = IoArgoprojWorkflowV1alpha1Arguments(
        parameters=[
            IoArgoprojWorkflowV1alpha1Parameter(name="n", value="{{tasks.produce.outputs.parameters.n}}")
        ]
    )
    dag = IoArgoprojWorkflowV1alpha1Template(
        name="main",
        dag=IoArgoprojWorkflowV1alpha1DAGTemplate(
            tasks=[
                IoArgoprojWorkflowV1alpha1DAGTask(name="produce", template="produce"),
                IoArgoprojWorkflowV1alpha1DAGTask(
                    name="show", template="show", depends="produce", arguments=n_arg
                ),
                IoArgoprojWorkflowV1alpha1DAGTask(
                    name="never", template="show", depends="produce", when="1 == 2", arguments=n_arg
                ),
            ]
        ),
    )
    workflow = IoArgoprojWorkflowV1alpha1Workflow(
        metadata=ObjectMeta(generate_name="argo-dag-"),
        spec=IoArgoprojWorkflowV1alpha1WorkflowSpec(entrypoint="main", templates=[dag, produce, show]),
    )

    created = _create(api, workflow)
    assert created.metadata.name.startswith("argo-dag-")
    assert isinstance(created.metadata.creation_timestamp, datetime)

    done = _wait_done(api, created.metadata.name)

    assert done.status.phase == "Succeeded"
    assert done.status.progress == "2/2"
    assert isinstance(done.status.started_at, datetime) and done.status.started_at.tzinfo is not None
    nodes = {node.display_name: node for node in done.status.nodes.values()}
    assert nodes[created.metadata.name].type == "DAG"
    assert nodes["produce"].type == "Pod" and nodes["produce"].outputs.exit_code == "0"
    assert nodes["produce"].outputs.parameters[0].value == "42"
    assert nodes["show"].type == "Retry" and nodes["show"].phase == "Succeeded"
    assert nodes["show(0)"].type == "Pod" and nodes["show(0)"].inputs.parameters[0].value == "42"
    assert nodes["never"].type == "Skipped" and nodes["never"].phase == "Skipped"
    assert done.spec.templates[2].retry_strategy.limit == "1"

    # Kubernetes' metav1.Time on the wire: whole seconds, UTC, "Z".
    raw = json.loads(api.get_workflow(NAMESPACE, created.metadata.name, _preload_content=False).data)
    stamps = [raw["metadata"]["creationTimestamp"], raw["status"]["startedAt"], raw["status"]["finishedAt"]]
    stamps += [n[k] for n in raw["status"]["nodes"].values() for k in ("startedAt", "finishedAt")]
    assert all(re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", s) for s in stamps), stamps


def test_argo_client_list_with_selectors_fields_and_paging(api: WorkflowServiceApi) -> None:
    batch = uuid.uuid4().hex[:8]
    names = sorted(_create(api, _workflow("argo-list-", {"batch": batch})).metadata.name for _ in range(3))

    listed = api.list_workflows(NAMESPACE, list_options_label_selector=f"batch={batch}")
    assert sorted(wf.metadata.name for wf in listed["items"]) == names
    one = api.list_workflows(NAMESPACE, list_options_field_selector=f"metadata.name={names[1]}")
    assert [wf.metadata.name for wf in one["items"]] == [names[1]]
    prefixed = api.list_workflows(
        NAMESPACE, list_options_field_selector="metadata.name=argo-list-", name_filter="Prefix"
    )
    assert set(names) <= {wf.metadata.name for wf in prefixed["items"]}

    recent = api.list_workflows(
        NAMESPACE, list_options_label_selector=f"batch={batch}", created_after="2000-01-01T00:00:00Z"
    )
    assert len(recent["items"]) == 3
    assert (
        api.list_workflows(
            NAMESPACE, list_options_label_selector=f"batch={batch}", created_after="2999-01-01T00:00:00Z"
        )["items"]
        == []
    )

    slim = api.list_workflows(
        NAMESPACE,
        list_options_label_selector=f"batch={batch}",
        fields="metadata,items.metadata.name,items.status.phase",
    )
    assert sorted(wf.metadata.name for wf in slim["items"]) == names
    assert all("labels" not in wf.metadata and "templates" not in wf.spec for wf in slim["items"])

    first = api.list_workflows(
        NAMESPACE, list_options_label_selector=f"batch={batch}", list_options_limit="2"
    )
    token = first.metadata["_continue"]
    rest = api.list_workflows(
        NAMESPACE,
        list_options_label_selector=f"batch={batch}",
        list_options_limit="2",
        list_options_continue=token,
    )
    assert len(first["items"]) == 2 and len(rest["items"]) == 1 and "_continue" not in rest.metadata
    assert sorted(wf.metadata.name for wf in first["items"] + rest["items"]) == names


def test_argo_client_delete_then_get_is_not_found(api: WorkflowServiceApi) -> None:
    name = _create(api, _workflow("argo-del-")).metadata.name
    assert api.get_workflow(NAMESPACE, name).metadata.name == name

    api.delete_workflow(NAMESPACE, name)

    with pytest.raises(NotFoundException) as caught:
        api.get_workflow(NAMESPACE, name)
    assert caught.value.status == 404 and json.loads(caught.value.body)["code"] == 5
    listed = api.list_workflows(NAMESPACE, list_options_field_selector=f"metadata.name={name}")
    assert listed["items"] == []


def test_argo_client_server_dry_run_stores_nothing(api: WorkflowServiceApi) -> None:
    checked = _create(api, _workflow("argo-dry-"), server_dry_run=True)
    assert checked.metadata.name.startswith("argo-dry-")
    with pytest.raises(NotFoundException):
        api.get_workflow(NAMESPACE, checked.metadata.name)


def test_argo_client_invalid_workflow_is_argo_error_400(api: WorkflowServiceApi) -> None:
    workflow = _workflow("argo-bad-")
    workflow.spec.entrypoint = "missing"
    with pytest.raises(ApiException) as caught:
        _create(api, workflow)
    assert caught.value.status == 400
    error = json.loads(caught.value.body)
    assert error["code"] == 3 and "missing" in error["message"]


def test_argo_client_submit_from_workflow_template(
    client: argo_workflows.ApiClient, api: WorkflowServiceApi
) -> None:
    name = f"argo-wft-{uuid.uuid4().hex[:6]}"
    template = IoArgoprojWorkflowV1alpha1WorkflowTemplate(
        metadata=ObjectMeta(name=name),
        spec=IoArgoprojWorkflowV1alpha1WorkflowSpec(
            entrypoint="say",
            arguments=IoArgoprojWorkflowV1alpha1Arguments(
                parameters=[IoArgoprojWorkflowV1alpha1Parameter(name="msg", value="hi")]
            ),
            templates=[_echo("say", "{{workflow.parameters.msg}}")],
        ),
    )
    templates = WorkflowTemplateServiceApi(client)
    created = templates.create_workflow_template(
        NAMESPACE, IoArgoprojWorkflowV1alpha1WorkflowTemplateCreateRequest(template=template)
    )
    assert created.metadata.name == name and isinstance(created.metadata.creation_timestamp, datetime)
    assert name in [t.metadata.name for t in templates.list_workflow_templates(NAMESPACE)["items"]]

    submitted = api.submit_workflow(
        NAMESPACE,
        IoArgoprojWorkflowV1alpha1WorkflowSubmitRequest(
            resource_kind="WorkflowTemplate",
            resource_name=name,
            submit_options=IoArgoprojWorkflowV1alpha1SubmitOpts(parameters=["msg=bonjour"]),
        ),
    )
    assert submitted.metadata.labels["workflows.argoproj.io/workflow-template"] == name

    done = _wait_done(api, submitted.metadata.name)
    assert done.status.phase == "Succeeded"
    assert done.spec.arguments.parameters[0].value == "bonjour"


def test_argo_client_info_and_version(client: argo_workflows.ApiClient) -> None:
    info_api = InfoServiceApi(client)
    info = info_api.get_info()
    assert info.links == [] and "managed_namespace" not in info
    version = info_api.get_version()  # every field of Argo's Version is required by the client
    assert version.version.startswith("v") and version.build_date == "1970-01-01T00:00:00Z"


def test_archived_workflows_answer_as_argo_does_without_an_archive(client: argo_workflows.ApiClient) -> None:
    from argo_workflows.api.archived_workflow_service_api import ArchivedWorkflowServiceApi

    archive = ArchivedWorkflowServiceApi(client)
    listed = archive.list_archived_workflows(namespace="default")
    assert list(listed.get("items") or []) == []
    assert list(archive.list_archived_workflow_label_keys().get("items") or []) == []
    with pytest.raises(NotFoundException) as missing:
        archive.get_archived_workflow(uid="00000000-0000-0000-0000-000000000000")
    assert json.loads(missing.value.body)["code"] == 5
