"""The command line a node runs, from its image, command, args and script (pure, no I/O).

Images are never pulled. An image only supplies the default command, as its ENTRYPOINT/CMD would:
``argoproj/argosay:v2`` runs the ``argosay`` shim, ``argoproj/argosay:v1`` runs ``cowsay``, and every
other image (alpine, busybox, python, ...) runs ``sh``, which exits at once on the empty stdin.
"""

from __future__ import annotations

__all__ = ["ARGO_SCRIPT_PATH", "command_line", "image_ref"]

# Where Argo's executor writes a script template's source inside the container.
ARGO_SCRIPT_PATH = "/argo/staging/script"

_ARGOSAY = "argoproj/argosay"


def image_ref(image: str) -> tuple[str, str]:
    """Split ``[registry/]repo[:tag][@digest]`` into (repo, tag), dropping Docker Hub's prefixes."""
    ref = image.split("@", 1)[0]
    repo, tag = ref, "latest"
    slash, colon = ref.rfind("/"), ref.rfind(":")
    if colon > slash:  # a colon before the last slash is a registry port, not a tag
        repo, tag = ref[:colon], ref[colon + 1 :]
    parts = repo.split("/")
    if len(parts) > 1 and ("." in parts[0] or ":" in parts[0] or parts[0] == "localhost"):
        parts = parts[1:]  # registry host
    if parts[0] == "library" and len(parts) > 1:
        parts = parts[1:]
    return "/".join(parts), tag


def command_line(
    image: str, command: list[str] | None, args: list[str] | None, script_path: str | None
) -> list[str]:
    """The argv to execute; its first element is still to be looked up on PATH.

    ``script_path`` is set for script templates: Argo appends the script file after command and args.
    """
    rest = list(args or [])
    if script_path is not None:
        return [*(command or ["sh"]), *rest, script_path]
    repo, tag = image_ref(image)
    if repo == _ARGOSAY and tag != "v1":
        if not command:
            return ["argosay", *rest]
        if command[0] == "/argosay":
            return ["argosay", *command[1:], *rest]
    if command:
        return [*command, *rest]
    if rest:
        return rest  # args without command replace the image CMD; none of these images has an ENTRYPOINT
    return ["cowsay"] if repo == _ARGOSAY else ["sh"]
