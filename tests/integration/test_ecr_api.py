"""ECR's API through the real ``aws ecr`` CLI and boto3, over the registry docker pushes to."""

from __future__ import annotations

import base64
import gzip
import hashlib
import json
import time
import uuid

import pytest
import requests

from tests.support.images import layer_tar
from tests.support.oci_layout import index_layout
from tests.support.registry import (
    OCI_CONFIG,
    OCI_LAYER,
    OCI_MANIFEST,
    RegistryClient,
    canonical,
    descriptor,
    skopeo_copy,
    skopeo_ref,
)

ACCOUNT = "000000000000"


@pytest.fixture
def ecr(dockyard):
    return dockyard.client("ecr")


def _name(prefix: str = "ecr") -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def _error(dockyard, *args: str) -> str:
    proc = dockyard.aws("ecr", *args, check=False)
    assert proc.returncode != 0, proc.stdout
    return proc.stderr


def test_create_describe_and_delete_a_repository_with_the_cli(dockyard):
    name = _name()
    created = dockyard.aws(
        "ecr",
        "create-repository",
        "--repository-name",
        name,
        "--image-tag-mutability",
        "IMMUTABLE",
        "--image-scanning-configuration",
        "scanOnPush=true",
        "--encryption-configuration",
        "encryptionType=KMS",
        "--tags",
        "Key=team,Value=shop",
    )["repository"]
    assert created["repositoryArn"] == f"arn:aws:ecr:us-east-1:{ACCOUNT}:repository/{name}"
    assert created["registryId"] == ACCOUNT
    assert created["repositoryUri"] == f"{dockyard.registry}/{name}"
    assert created["imageTagMutability"] == "IMMUTABLE"
    assert created["imageScanningConfiguration"] == {"scanOnPush": True}
    assert created["encryptionConfiguration"] == {"encryptionType": "KMS"}
    found = dockyard.aws("ecr", "describe-repositories", "--repository-names", name)["repositories"]
    assert [r["repositoryName"] for r in found] == [name]
    tags = dockyard.aws("ecr", "list-tags-for-resource", "--resource-arn", created["repositoryArn"])["tags"]
    assert tags == [{"Key": "team", "Value": "shop"}]
    assert "RepositoryAlreadyExistsException" in _error(
        dockyard, "create-repository", "--repository-name", name
    )
    dockyard.aws("ecr", "delete-repository", "--repository-name", name)
    assert "RepositoryNotFoundException" in _error(
        dockyard, "describe-repositories", "--repository-names", name
    )
    assert "RepositoryNotFoundException" in _error(dockyard, "delete-repository", "--repository-name", name)


def test_exclusion_filters_are_checked_and_echoed(ecr):
    name = _name()
    with pytest.raises(ecr.exceptions.InvalidParameterException):
        ecr.create_repository(repositoryName=name, imageTagMutability="IMMUTABLE_WITH_EXCLUSION")
    repo = ecr.create_repository(
        repositoryName=name,
        imageTagMutability="IMMUTABLE_WITH_EXCLUSION",
        imageTagMutabilityExclusionFilters=[{"filterType": "WILDCARD", "filter": "latest"}],
    )["repository"]
    assert repo["imageTagMutabilityExclusionFilters"] == [{"filterType": "WILDCARD", "filter": "latest"}]
    with pytest.raises(ecr.exceptions.InvalidParameterException):  # the model's enum
        ecr.put_image_tag_mutability(repositoryName=name, imageTagMutability="SOMETIMES")


def test_describe_repositories_pages_and_sees_repositories_made_by_a_push(dockyard, ecr, reg: RegistryClient):
    pushed = _name("pushed")
    reg.push_image(pushed, "v1", [b"layer-" + pushed.encode()])
    names = []
    kwargs: dict = {"maxResults": 2}
    while True:
        page = ecr.describe_repositories(**kwargs)
        assert len(page["repositories"]) <= 2
        names += [r["repositoryName"] for r in page["repositories"]]
        if "nextToken" not in page:
            break
        kwargs["nextToken"] = page["nextToken"]
    assert pushed in names
    repo = ecr.describe_repositories(repositoryNames=[pushed])["repositories"][0]
    assert repo["imageTagMutability"] == "MUTABLE"  # created on push, with the defaults
    assert repo["encryptionConfiguration"] == {"encryptionType": "AES256"}


def test_images_pushed_over_oci_are_listed_described_fetched_and_deleted(ecr, reg: RegistryClient):
    name = _name()
    layer = b"layer-" + name.encode() * 100
    digest, body = reg.push_image(name, "v1", [layer])
    assert reg.get(f"/v2/{name}/manifests/v1").status_code == 200  # a pull: recorded
    tagged = ecr.list_images(repositoryName=name, filter={"tagStatus": "TAGGED"})["imageIds"]
    assert tagged == [{"imageDigest": digest, "imageTag": "v1"}]
    assert ecr.list_images(repositoryName=name, filter={"tagStatus": "UNTAGGED"})["imageIds"] == []
    detail = ecr.describe_images(repositoryName=name, imageIds=[{"imageTag": "v1"}])["imageDetails"][0]
    assert detail["imageDigest"] == digest and detail["imageTags"] == ["v1"]
    assert detail["imageSizeInBytes"] == len(layer) + 2  # the layer and the "{}" config
    assert detail["imageManifestMediaType"] == OCI_MANIFEST
    assert detail["artifactMediaType"] == "application/vnd.oci.image.config.v1+json"
    assert "imagePushedAt" in detail and "lastRecordedPullTime" in detail
    assert "imageScanStatus" not in detail
    with pytest.raises(ecr.exceptions.ImageNotFoundException):
        ecr.describe_images(repositoryName=name, imageIds=[{"imageTag": "nope"}])
    got = ecr.batch_get_image(repositoryName=name, imageIds=[{"imageTag": "v1"}, {"imageTag": "nope"}])
    assert got["images"][0]["imageManifest"].encode() == body
    assert got["failures"] == [
        {
            "imageId": {"imageTag": "nope"},
            "failureCode": "ImageNotFound",
            "failureReason": "Requested image not found",
        }
    ]
    other = ecr.batch_get_image(
        repositoryName=name,
        imageIds=[{"imageTag": "v1"}],
        acceptedMediaTypes=["application/vnd.docker.distribution.manifest.v1+json"],
    )
    assert other["images"] == [] and other["failures"][0]["failureCode"] == "ImageNotFound"
    with pytest.raises(ecr.exceptions.RepositoryNotEmptyException):
        ecr.delete_repository(repositoryName=name)
    deleted = ecr.batch_delete_image(
        repositoryName=name, imageIds=[{"imageTag": "v1"}, {"imageDigest": "bad"}]
    )
    assert deleted["imageIds"] == [{"imageDigest": digest, "imageTag": "v1"}]
    assert deleted["failures"][0]["failureCode"] == "InvalidImageDigest"
    assert reg.get(f"/v2/{name}/manifests/{digest}").status_code == 404  # its last tag: the image went
    ecr.delete_repository(repositoryName=name)


def test_layers_uploaded_in_parts_then_put_image_and_download(ecr, dockyard):
    name = _name()
    ecr.create_repository(repositoryName=name)
    part1, part2 = b"a" * (5 * 1024 * 1024), b"b" * 1000
    layer = part1 + part2
    layer_digest = "sha256:" + hashlib.sha256(layer).hexdigest()
    up = ecr.initiate_layer_upload(repositoryName=name)
    assert up["partSize"] == 5 * 1024 * 1024
    uid = up["uploadId"]
    with pytest.raises(ecr.exceptions.InvalidLayerPartException):
        ecr.upload_layer_part(
            repositoryName=name, uploadId=uid, partFirstByte=10, partLastByte=19, layerPartBlob=b"x" * 10
        )
    r = ecr.upload_layer_part(
        repositoryName=name, uploadId=uid, partFirstByte=0, partLastByte=len(part1) - 1, layerPartBlob=part1
    )
    assert r["lastByteReceived"] == len(part1) - 1
    ecr.upload_layer_part(
        repositoryName=name,
        uploadId=uid,
        partFirstByte=len(part1),
        partLastByte=len(layer) - 1,
        layerPartBlob=part2,
    )
    done = ecr.complete_layer_upload(repositoryName=name, uploadId=uid, layerDigests=[layer_digest])
    assert done["layerDigest"] == layer_digest
    config = b"{}"
    config_digest = "sha256:" + hashlib.sha256(config).hexdigest()
    up = ecr.initiate_layer_upload(repositoryName=name)["uploadId"]
    ecr.upload_layer_part(
        repositoryName=name, uploadId=up, partFirstByte=0, partLastByte=1, layerPartBlob=config
    )
    with pytest.raises(ecr.exceptions.InvalidLayerException):
        ecr.complete_layer_upload(repositoryName=name, uploadId=up, layerDigests=["sha256:" + "1" * 64])
    with pytest.raises(ecr.exceptions.UploadNotFoundException):
        ecr.upload_layer_part(
            repositoryName=name, uploadId=up, partFirstByte=2, partLastByte=2, layerPartBlob=b"x"
        )
    up = ecr.initiate_layer_upload(repositoryName=name)["uploadId"]
    ecr.upload_layer_part(
        repositoryName=name, uploadId=up, partFirstByte=0, partLastByte=1, layerPartBlob=config
    )
    ecr.complete_layer_upload(repositoryName=name, uploadId=up, layerDigests=[config_digest])
    avail = ecr.batch_check_layer_availability(
        repositoryName=name, layerDigests=[layer_digest, "sha256:" + "2" * 64]
    )
    assert avail["layers"][0]["layerAvailability"] == "AVAILABLE" and avail["layers"][0]["layerSize"] == len(
        layer
    )
    assert avail["failures"][0]["failureCode"] == "MissingLayerDigest"

    manifest = canonical(
        {
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "config": {
                "mediaType": "application/vnd.oci.image.config.v1+json",
                "digest": config_digest,
                "size": 2,
            },
            "layers": [
                {
                    "mediaType": "application/vnd.oci.image.layer.v1.tar",
                    "digest": layer_digest,
                    "size": len(layer),
                }
            ],
        }
    ).decode()
    digest = "sha256:" + hashlib.sha256(manifest.encode()).hexdigest()
    with pytest.raises(ecr.exceptions.ImageDigestDoesNotMatchException):
        ecr.put_image(
            repositoryName=name, imageManifest=manifest, imageTag="v1", imageDigest="sha256:" + "3" * 64
        )
    put = ecr.put_image(repositoryName=name, imageManifest=manifest, imageTag="v1", imageDigest=digest)
    assert put["image"]["imageId"] == {"imageDigest": digest, "imageTag": "v1"}
    with pytest.raises(ecr.exceptions.ImageAlreadyExistsException):
        ecr.put_image(repositoryName=name, imageManifest=manifest, imageTag="v1")
    with pytest.raises(ecr.exceptions.LayersNotFoundException):
        ecr.put_image(repositoryName=name, imageManifest=manifest.replace(layer_digest, "sha256:" + "4" * 64))

    url = ecr.get_download_url_for_layer(repositoryName=name, layerDigest=layer_digest)["downloadUrl"]
    assert url.startswith(f"http://{dockyard.registry}/")
    got = requests.get(url, timeout=30)
    assert got.status_code == 200 and hashlib.sha256(got.content).hexdigest() == layer_digest[7:]
    assert requests.get(url + "x", timeout=30).status_code == 401
    with pytest.raises(ecr.exceptions.LayersNotFoundException):
        ecr.get_download_url_for_layer(repositoryName=name, layerDigest="sha256:" + "5" * 64)


def test_a_small_part_before_another_is_refused(ecr):
    name = _name()
    ecr.create_repository(repositoryName=name)
    uid = ecr.initiate_layer_upload(repositoryName=name)["uploadId"]
    ecr.upload_layer_part(
        repositoryName=name, uploadId=uid, partFirstByte=0, partLastByte=9, layerPartBlob=b"x" * 10
    )
    with pytest.raises(ecr.exceptions.LayerPartTooSmallException):
        ecr.upload_layer_part(
            repositoryName=name, uploadId=uid, partFirstByte=10, partLastByte=19, layerPartBlob=b"y" * 10
        )


def test_put_image_cannot_move_a_tag_of_an_immutable_repository(ecr, reg: RegistryClient):
    name = _name()
    ecr.create_repository(repositoryName=name, imageTagMutability="IMMUTABLE")
    first, _ = reg.push_image(name, "v1", [b"one-" + name.encode()])
    _, body = _push_untagged(reg, name, b"two-" + name.encode())
    with pytest.raises(ecr.exceptions.ImageTagAlreadyExistsException) as e:
        ecr.put_image(repositoryName=name, imageManifest=body.decode(), imageTag="v1")
    assert "cannot be overwritten because the repository is immutable" in str(e.value)
    ecr.put_image(repositoryName=name, imageManifest=body.decode(), imageTag="v2")  # a new tag is fine
    assert (
        ecr.describe_images(repositoryName=name, imageIds=[{"imageTag": "v1"}])["imageDetails"][0][
            "imageDigest"
        ]
        == first
    )


def _push_untagged(reg: RegistryClient, name: str, layer: bytes) -> tuple[str, bytes]:
    """Push an image by digest (no tag); returns its digest and manifest."""
    reg.push_blob(name, layer)
    reg.push_blob(name, b"{}")
    body = canonical(
        {
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "config": descriptor(OCI_CONFIG, b"{}"),
            "layers": [descriptor(OCI_LAYER, layer)],
        }
    )
    digest = "sha256:" + hashlib.sha256(body).hexdigest()
    r = reg.push_manifest(name, digest, body)
    assert r.status_code == 201, r.text
    return digest, body


def test_repository_policies_are_validated_stored_and_removed(dockyard, ecr):
    name = _name()
    ecr.create_repository(repositoryName=name)
    assert "RepositoryPolicyNotFoundException" in _error(
        dockyard, "get-repository-policy", "--repository-name", name
    )
    for bad, why in [
        ("{not json", "not valid JSON"),
        (json.dumps({"Statement": [{"Effect": "Allow", "Action": "ecr:*"}]}), "Principal is required"),
        (json.dumps({"Statement": [{"Effect": "Maybe", "Principal": "*", "Action": "ecr:*"}]}), "Effect"),
        (
            json.dumps({"Statement": [{"Effect": "Allow", "Principal": "*", "Action": "s3:GetObject"}]}),
            "not an ecr: action",
        ),
    ]:
        err = _error(dockyard, "set-repository-policy", "--repository-name", name, "--policy-text", bad)
        assert "InvalidParameterException" in err and why in err, err
    policy = json.dumps(
        {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Sid": "pull",
                    "Effect": "Allow",
                    "Principal": {"AWS": f"arn:aws:iam::{ACCOUNT}:user/ci"},
                    "Action": ["ecr:BatchGetImage", "ecr:GetDownloadUrlForLayer"],
                }
            ],
        }
    )
    dockyard.aws("ecr", "set-repository-policy", "--repository-name", name, "--policy-text", policy)
    got = dockyard.aws("ecr", "get-repository-policy", "--repository-name", name)
    assert json.loads(got["policyText"]) == json.loads(policy)
    dockyard.aws("ecr", "delete-repository-policy", "--repository-name", name)
    assert "RepositoryPolicyNotFoundException" in _error(
        dockyard, "get-repository-policy", "--repository-name", name
    )


def test_tags_are_set_and_removed_by_arn(ecr):
    name = _name()
    arn = ecr.create_repository(repositoryName=name)["repository"]["repositoryArn"]
    ecr.tag_resource(resourceArn=arn, tags=[{"Key": "a", "Value": "1"}, {"Key": "b", "Value": "2"}])
    ecr.untag_resource(resourceArn=arn, tagKeys=["a"])
    assert ecr.list_tags_for_resource(resourceArn=arn)["tags"] == [{"Key": "b", "Value": "2"}]
    with pytest.raises(ecr.exceptions.InvalidParameterException):
        ecr.list_tags_for_resource(resourceArn="arn:aws:s3:::bucket")
    with pytest.raises(ecr.exceptions.RepositoryNotFoundException):
        ecr.list_tags_for_resource(resourceArn=arn + "-gone")


def test_scanning_configuration_is_stored_and_answered(ecr, reg: RegistryClient):
    name = _name()
    ecr.create_repository(repositoryName=name)
    ecr.put_image_scanning_configuration(repositoryName=name, imageScanningConfiguration={"scanOnPush": True})
    ecr.put_registry_scanning_configuration(
        scanType="BASIC",
        rules=[
            {
                "scanFrequency": "SCAN_ON_PUSH",
                "repositoryFilters": [{"filter": "prod-*", "filterType": "WILDCARD"}],
            }
        ],
    )
    assert (
        ecr.get_registry_scanning_configuration()["scanningConfiguration"]["rules"][0]["scanFrequency"]
        == "SCAN_ON_PUSH"
    )
    got = ecr.batch_get_repository_scanning_configuration(repositoryNames=[name, name + "-gone"])
    assert got["scanningConfigurations"][0]["scanFrequency"] == "SCAN_ON_PUSH"
    assert got["failures"][0]["failureCode"] == "REPOSITORY_NOT_FOUND"
    reg.push_image(name + "-plain", "v1", [b"plain"])  # created on push, without scanOnPush
    with pytest.raises(ecr.exceptions.ScanNotFoundException):
        ecr.describe_image_scan_findings(repositoryName=name + "-plain", imageId={"imageTag": "v1"})
    reg.push_image(name, "v1", [b"scan-" + name.encode()])  # scanned on push: not a tar, so FAILED
    while True:
        got = ecr.describe_image_scan_findings(repositoryName=name, imageId={"imageTag": "v1"})
        if got["imageScanStatus"]["status"] != "IN_PROGRESS":
            break
        time.sleep(0.1)
    assert got["imageScanStatus"]["status"] == "FAILED" and got["imageScanStatus"]["description"]
    assert "imageScanFindings" not in got


def test_get_authorization_token_is_a_12_hour_aws_password(ecr, dockyard):
    data = ecr.get_authorization_token()["authorizationData"][0]
    user, _, password = base64.b64decode(data["authorizationToken"]).decode().partition(":")
    assert user == "AWS" and password
    assert data["proxyEndpoint"] == f"http://{dockyard.registry}"
    left = data["expiresAt"].timestamp() - time.time()
    assert 11.9 * 3600 < left <= 12 * 3600 + 5
    token = requests.get(
        f"{dockyard.registry_url}/token",
        params={"service": "dockyard", "scope": "repository:any/thing:pull,push"},
        auth=("AWS", password),
        timeout=30,
    )
    assert token.status_code == 200, token.text
    refused = requests.get(f"{dockyard.registry_url}/token", auth=("AWS", password[:-3] + "abc"), timeout=30)
    assert refused.status_code == 401


def test_lifecycle_policies_are_validated_stored_and_previewed(dockyard, ecr, reg: RegistryClient):
    name = _name()
    ecr.create_repository(repositoryName=name)
    digests = [reg.push_image(name, f"v{n}", [f"life-{n}-{name}".encode()])[0] for n in range(3)]
    assert "LifecyclePolicyNotFoundException" in _error(
        dockyard, "get-lifecycle-policy", "--repository-name", name
    )
    bad = json.dumps(
        {
            "rules": [
                {
                    "rulePriority": 1,
                    "selection": {"tagStatus": "tagged", "countType": "imageCountMoreThan", "countNumber": 1},
                    "action": {"type": "expire"},
                }
            ]
        }
    )
    err = _error(dockyard, "put-lifecycle-policy", "--repository-name", name, "--lifecycle-policy-text", bad)
    assert "InvalidParameterException" in err and "tagPrefixList" in err, err
    keep_one = json.dumps(
        {
            "rules": [
                {
                    "rulePriority": 1,
                    "description": "keep the newest",
                    "selection": {"tagStatus": "any", "countType": "imageCountMoreThan", "countNumber": 1},
                    "action": {"type": "expire"},
                }
            ]
        }
    )
    dockyard.aws(
        "ecr", "put-lifecycle-policy", "--repository-name", name, "--lifecycle-policy-text", keep_one
    )
    assert json.loads(ecr.get_lifecycle_policy(repositoryName=name)["lifecyclePolicyText"]) == json.loads(
        keep_one
    )
    with pytest.raises(ecr.exceptions.LifecyclePolicyPreviewNotFoundException):
        ecr.get_lifecycle_policy_preview(repositoryName=name)
    assert (
        dockyard.aws("ecr", "start-lifecycle-policy-preview", "--repository-name", name)["status"]
        == "COMPLETE"
    )
    preview = dockyard.aws("ecr", "get-lifecycle-policy-preview", "--repository-name", name)
    assert preview["summary"] == {"expiringImageTotalCount": 2}
    assert sorted(r["imageDigest"] for r in preview["previewResults"]) == sorted(digests[:2])
    assert all(
        r["action"] == {"type": "EXPIRE"} and r["appliedRulePriority"] == 1 for r in preview["previewResults"]
    )
    assert len(ecr.list_images(repositoryName=name)["imageIds"]) == 3  # a preview expires nothing
    dockyard.aws("ecr", "delete-lifecycle-policy", "--repository-name", name)
    with pytest.raises(ecr.exceptions.LifecyclePolicyNotFoundException):
        ecr.delete_lifecycle_policy(repositoryName=name)


@pytest.mark.parametrize(
    ("operation", "params"),
    [
        ("list_images", {}),
        ("describe_images", {}),
        ("batch_get_image", {"imageIds": [{"imageTag": "v1"}]}),
        ("batch_delete_image", {"imageIds": [{"imageTag": "v1"}]}),
        ("batch_check_layer_availability", {"layerDigests": ["sha256:" + "0" * 64]}),
        ("get_download_url_for_layer", {"layerDigest": "sha256:" + "0" * 64}),
        ("put_image_tag_mutability", {"imageTagMutability": "IMMUTABLE"}),
        ("set_repository_policy", {"policyText": "{}"}),
        ("get_lifecycle_policy", {}),
        ("start_image_scan", {"imageId": {"imageTag": "v1"}}),
    ],
)
def test_an_unknown_repository_is_repository_not_found(ecr, operation, params):
    with pytest.raises(ecr.exceptions.RepositoryNotFoundException) as e:
        getattr(ecr, operation)(repositoryName=_name("unknown"), **params)
    assert f"registry with id '{ACCOUNT}'" in str(e.value)


def test_bad_names_and_registry_ids_are_invalid_parameters(ecr):
    for bad in ({"repositoryName": "UPPER/case"}, {"repositoryName": "ok", "registryId": "123456789012"}):
        with pytest.raises(ecr.exceptions.InvalidParameterException):
            ecr.create_repository(**bad)
    with pytest.raises(ecr.exceptions.UploadNotFoundException):
        name = _name()
        ecr.create_repository(repositoryName=name)
        ecr.upload_layer_part(
            repositoryName=name, uploadId="0" * 32, partFirstByte=0, partLastByte=0, layerPartBlob=b"x"
        )


def test_list_image_referrers_names_the_manifests_whose_subject_is_the_image(ecr, reg: RegistryClient):
    name = _name()
    subject, body = reg.push_image(name, "v1", [b"subject-" + name.encode()])
    sbom = "application/spdx+json"
    referrer, _ = reg.push_image(
        name,
        "sbom",
        [b"sbom-" + name.encode()],
        artifactType=sbom,
        subject={"mediaType": OCI_MANIFEST, "digest": subject, "size": len(body)},
    )
    got = ecr.list_image_referrers(repositoryName=name, subjectId={"imageDigest": subject})["referrers"]
    assert [(r["digest"], r["artifactType"], r["artifactStatus"]) for r in got] == [
        (referrer, sbom, "ACTIVE")
    ]
    other = ecr.list_image_referrers(
        repositoryName=name,
        subjectId={"imageDigest": subject},
        filter={"artifactTypes": ["application/vnd.cncf.notary.signature"]},
    )
    assert other["referrers"] == []
    detail = ecr.describe_images(repositoryName=name, imageIds=[{"imageTag": "sbom"}])["imageDetails"][0]
    assert detail["subjectManifestDigest"] == subject and detail["artifactMediaType"] == sbom


def test_batch_delete_image_keeps_an_image_an_index_names_until_the_index_goes(dockyard, tmp_path):
    name = _name("ecr-index")
    layout, children = index_layout(
        tmp_path / "index", {arch: [gzip.compress(layer_tar({f"{arch}.txt": arch.encode()}))] for arch in
                             ("amd64", "arm64")}
    )
    skopeo_copy(dockyard, f"oci:{layout}:1", skopeo_ref(dockyard, f"{name}:1"), "--all", "--preserve-digests")
    index = dockyard.aws("ecr", "describe-images", "--repository-name", name, "--image-ids", "imageTag=1")
    index_digest = index["imageDetails"][0]["imageDigest"]
    out = dockyard.aws(
        "ecr", "batch-delete-image", "--repository-name", name, "--image-ids", f"imageDigest={children[0]}"
    )
    assert out["imageIds"] == []
    [failure] = out["failures"]
    assert failure["imageId"] == {"imageDigest": children[0]}
    assert failure["failureCode"] == "ImageReferencedByManifestList"
    assert index_digest in failure["failureReason"]
    listed = dockyard.aws("ecr", "list-images", "--repository-name", name)["imageIds"]
    assert {i["imageDigest"] for i in listed} == {index_digest, *children}
    # the index first, then its children, in one request
    ids = [f"imageDigest={d}" for d in (index_digest, *children)]
    out = dockyard.aws("ecr", "batch-delete-image", "--repository-name", name, "--image-ids", *ids)
    assert out["failures"] == []
    assert {i["imageDigest"] for i in out["imageIds"]} == {index_digest, *children}
