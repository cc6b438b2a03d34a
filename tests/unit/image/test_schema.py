"""The image schema: the documents clients read and the validator's jsonschema wording."""

from __future__ import annotations

import pytest

from pocketstack.image.service.schema import ImageSchema, SchemaError, check

SCHEMA = ImageSchema(["raw", "qcow2"], ["bare"])


def test_documents() -> None:
    image = SCHEMA.image_document()
    assert image["name"] == "image" and image["additionalProperties"] == {"type": "string"}
    assert image["properties"]["visibility"]["enum"] == ["community", "public", "private",
                                                         "shared"]
    assert image["properties"]["disk_format"]["enum"] == [None, "raw", "qcow2"]
    assert image["properties"]["os_distro"]["is_base"] is False
    assert [link["rel"] for link in image["links"]] == ["self", "enclosure", "describedby"]
    images = SCHEMA.images_document()
    assert images["properties"]["images"]["items"] == image
    assert SCHEMA.member_document()["properties"]["status"]["enum"] == \
        ["pending", "accepted", "rejected"]
    assert "items" in SCHEMA.members_document()["properties"]["members"]


@pytest.mark.parametrize(("body", "message"), [
    ({"visibility": "x"}, "'x' is not one of ['community', 'public', 'private', 'shared']"),
    ({"min_ram": True}, "True is not of type 'integer'"),
    ({"name": "n" * 256}, "is too long"),
    ({"tags": ["ok", 1]}, "1 is not of type 'string'"),
    ({"custom": None}, "None is not of type 'string'"),
])
def test_validation_errors(body: dict[str, object], message: str) -> None:
    with pytest.raises(SchemaError) as caught:
        SCHEMA.validate(body)
    assert str(caught.value).startswith("Provided object does not match schema 'image': ")
    assert message in str(caught.value)


def test_valid_bodies_and_checks() -> None:
    SCHEMA.validate({"name": None, "kernel_id": None, "disk_format": None, "tags": [],
                     "protected": False, "custom": "value"})
    assert check({"url": "u"}, {"type": "object", "required": ["url", "metadata"]}) == \
        ("required", "'metadata' is a required property")
