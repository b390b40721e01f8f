"""SUITE.yaml's entries blocked by the Kubernetes API (``blocked_by: [k8s-api, ...]``), run against kmock's
KubernetesEmulator with the fake kubelet (tests/support/kubelet.py): resource templates act through the
API, and container steps run as pods (``scheduler.executor: kubernetes``).

Where SUITE.yaml gives Argo's outcome (``argo_outcome``), the run must reach it. Entries that need
something the emulator is not are skipped with the reason (Argo's controller running the Workflow
objects they create, kubectl inside a pod). Entries without an outcome in SUITE.yaml are held to ``EMULATOR_OUTCOMES``: what this setup gives, with
the reason. The whole report is printed (``-s``)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.conftest import SHARED
from tests.support.kubelet import KubeApi, kube_scheduler
from tests.workflows.suite.harness import Entry, load_fixtures, load_suite, workflow_of
from workflows.errors import WorkflowError

pytestmark = pytest.mark.skipif(
    not (SHARED / "argo-examples" / "SUITE.yaml").exists(), reason="../shared/argo-examples is absent"
)

# Our expectations where SUITE.yaml has none: phase (or "LintError") and why.
EMULATOR_OUTCOMES: dict[str, tuple[str, str]] = {
    "cron-backfill.yaml#2": ("Succeeded", "creates Workflow objects through the API"),
    "k8s-orchestration.yaml": (
        "Succeeded",
        "creates a Job, waits for status.succeeded > 9, reads its uid, deletes it",
    ),
    "k8s-set-owner-reference.yaml": (
        "Succeeded",
        "creates a ConfigMap; no owner reference (the workflow is not a Kubernetes object)",
    ),
    "resource-delete-with-flags.yaml": ("Succeeded", "creates a ConfigMap and deletes it with --selector"),
    "expectedfailures/large-workflow.yaml": (
        "Succeeded",
        "too large for Argo's etcd object; the store here holds it",
    ),
    "k8s-jobs.yaml": (
        "LintError",
        "the example's metadata.name is inside its annotation text: no name or generateName",
    ),
    "daemoned-stateful-set-with-service.yaml": (
        "Failed",
        "creates the StatefulSet and Service; its client step curls nginx, which nothing serves here",
    ),
    "k8s-resource-log-selector.yaml": ("Failed", "creates a kubeflow TFJob: that CRD is not installed"),
    "resource-flags.yaml": (
        "Failed",
        "creates an OpenShift Route: that CRD is not installed, as the example says",
    ),
    "k8s-patch-json-workflow.yaml": (
        "Failed",
        "JSON-patches its own Workflow object, which is not a Kubernetes object here",
    ),
}
NEEDS_MORE = {
    "k8s-wait-wf.yaml": "waits for a Workflow object to be run by Argo's controller in the cluster",
    "workflow-of-workflows.yaml": "waits for Workflow objects to be run by Argo's controller in the cluster",
    "expectedfailures/pod-termination-failure.yaml": "runs kubectl inside a pod against the cluster",
}


def kubernetes_entries() -> list[Entry]:
    return [e for e in load_suite() if "k8s-api" in (e.raw.get("blocked_by") or [])]


@pytest.fixture(scope="module")
def report() -> Any:
    lines: list[str] = []
    yield lines
    print("\nSUITE.yaml entries blocked by k8s-api, under the emulator:\n" + "\n".join(sorted(lines)))


@pytest.mark.slow
@pytest.mark.parametrize("entry", kubernetes_entries(), ids=lambda e: e.id)
async def test_kubernetes_entry(entry: Entry, api: KubeApi, tmp_path: Path, report: list[str]) -> None:
    argo = (entry.raw.get("argo_outcome") or {}).get("phase")
    if entry.id in NEEDS_MORE:
        report.append(f"  skip  {entry.id}: {NEEDS_MORE[entry.id]}")
        pytest.skip(NEEDS_MORE[entry.id])
    expected, why = (argo, "Argo's outcome") if argo else EMULATOR_OUTCOMES[entry.id]
    async with kube_scheduler(tmp_path, api.cluster()) as scheduler:
        await load_fixtures(scheduler.store, entry)
        try:
            record = await scheduler.submit(workflow_of(entry))
        except WorkflowError as exc:
            phase, detail = "LintError", str(exc).splitlines()[-1]
        else:
            try:
                done = await scheduler.wait_done(record.namespace, record.name, 60)
            except TimeoutError:
                await scheduler.terminate(record.namespace, record.name)
                raise
            phase, detail = done.phase.value, done.message or ""
    report.append(f"  {'pass' if phase == expected else 'FAIL'}  {entry.id}: {phase} ({why}) {detail[:80]}")
    assert phase == expected, f"{entry.id}: {phase}, expected {expected} ({why}): {detail}"
