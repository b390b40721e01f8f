"""Containers as Argo uses them: ``container``, ``script``, sidecars, init containers, container sets.

These follow the Kubernetes ``Container`` type. The fields a local engine can honour (image, command,
args, env, workingDir, volumeMounts) are modelled; scheduling and security fields are accepted as
plain mappings and marked Kubernetes-only.
"""

from __future__ import annotations

from typing import Annotated

from workflows.models._base import K8S_ONLY, ArgoModel, IntOrString, KubeDict

__all__ = [
    "Container",
    "ContainerNode",
    "ContainerSetRetryStrategy",
    "ContainerSetTemplate",
    "EnvVar",
    "ScriptTemplate",
    "UserContainer",
    "VolumeMount",
]


class EnvVar(ArgoModel):
    """One environment variable; ``valueFrom`` (secret, configMap, field refs) is passed through."""

    name: str
    value: str | None = None
    value_from: KubeDict | None = None


class VolumeMount(ArgoModel):
    """Mounts the volume called ``name`` at ``mountPath``."""

    name: str
    mount_path: str
    sub_path: str | None = None
    sub_path_expr: str | None = None
    read_only: bool | None = None
    recursive_read_only: str | None = None
    mount_propagation: str | None = None


class Container(ArgoModel):
    """A Kubernetes container. ``name`` is optional for the main container of a template."""

    name: str | None = None
    image: str | None = None
    command: list[str] | None = None
    args: list[str] | None = None
    working_dir: str | None = None
    env: list[EnvVar] | None = None
    env_from: list[KubeDict] | None = None
    volume_mounts: list[VolumeMount] | None = None
    readiness_probe: KubeDict | None = None
    # limits.memory / limits.cpu become process limits of the local executor; requests are ignored
    resources: KubeDict | None = None
    security_context: Annotated[KubeDict | None, K8S_ONLY] = None
    image_pull_policy: Annotated[str | None, K8S_ONLY] = None
    ports: Annotated[list[KubeDict] | None, K8S_ONLY] = None
    liveness_probe: Annotated[KubeDict | None, K8S_ONLY] = None
    startup_probe: Annotated[KubeDict | None, K8S_ONLY] = None
    lifecycle: Annotated[KubeDict | None, K8S_ONLY] = None
    termination_message_path: Annotated[str | None, K8S_ONLY] = None
    termination_message_policy: Annotated[str | None, K8S_ONLY] = None
    volume_devices: Annotated[list[KubeDict] | None, K8S_ONLY] = None
    resize_policy: Annotated[list[KubeDict] | None, K8S_ONLY] = None
    restart_policy: Annotated[str | None, K8S_ONLY] = None
    stdin: Annotated[bool | None, K8S_ONLY] = None
    stdin_once: Annotated[bool | None, K8S_ONLY] = None
    tty: Annotated[bool | None, K8S_ONLY] = None


class ScriptTemplate(Container):
    """A container whose ``source`` is written to a file and appended to ``command``."""

    source: str | None = None


class UserContainer(Container):
    """A sidecar or init container; ``mirrorVolumeMounts`` copies the main container's mounts."""

    mirror_volume_mounts: bool | None = None


class ContainerNode(Container):
    """One container of a ``containerSet``; ``dependencies`` order it within the pod."""

    dependencies: list[str] | None = None


class ContainerSetRetryStrategy(ArgoModel):
    """In-pod retries of a container set (no new pod is created)."""

    retries: IntOrString
    duration: str | None = None


class ContainerSetTemplate(ArgoModel):
    """Several containers in one pod, forming a graph through ``dependencies``."""

    containers: list[ContainerNode]
    volume_mounts: list[VolumeMount] | None = None
    retry_strategy: ContainerSetRetryStrategy | None = None
