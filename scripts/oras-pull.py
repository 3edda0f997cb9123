"""Pulls an image's manifest and blobs from a registry with the ORAS Python
client (PyPI `oras`, installed into .venv-oras/ by scripts/ensure-registry.sh):
the image tests' second client, beside skopeo. Writes OUT/manifest.json (as
the registry served it for the OCI manifest media type) and OUT/blobs/sha256/HEX
for the config and every layer. Plain HTTP: the tests' registry is on 127.0.0.1.

usage: oras-pull.py HOST:PORT/NAME:TAG OUT
"""

import json
import os
import sys

import oras.client

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"


def main(reference, out):
    client = oras.client.OrasClient(insecure=True)
    container = client.get_container(reference)
    manifest = client.get_manifest(container, allowed_media_type=[OCI_MANIFEST])
    os.makedirs(os.path.join(out, "blobs", "sha256"), exist_ok=True)
    with open(os.path.join(out, "manifest.json"), "w") as f:
        json.dump(manifest, f)
    for descriptor in [manifest["config"], *manifest["layers"]]:
        digest = descriptor["digest"]
        path = os.path.join(out, "blobs", "sha256", digest.removeprefix("sha256:"))
        client.download_blob(container, digest, path)


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    main(sys.argv[1], sys.argv[2])
