"""The image service's default policy: one rule per API operation, Glance's secure defaults.

Personas (credentials as built by :mod:`pocketstack.image.api.common`):

- *cloud admin* (``context_is_admin``): ``admin`` on the system or on the cloud's admin
  project, as identity defines it. Glance treats any ``admin`` role as admin; here a project
  admin acts as a project member, so one project's admin never reaches another's images.
- *project member*: manages its project's images (create, upload, change, delete, share).
- *project reader*: sees and lists what its project may see; downloading needs ``member``.
- *image member*: a project an image is shared with reads it once listed as a member, lists
  it by default once it accepted, and alone decides its membership status.

Which images a caller may see at all (owner, public, community, shared with it) is decided
by the service layer as Glance's database layer decides it; rules see the image as
``target`` (``owner``, ``visibility``, ``member_id``) so an operator may narrow them further
from a YAML file (``[image] policy_file``).
"""

from __future__ import annotations

ADMIN = "rule:context_is_admin"
OWNER_MEMBER = f"{ADMIN} or (role:member and project_id:%(target.owner)s)"

RULES: dict[str, str] = {
    "context_is_admin": "role:admin and (system_scope:all or is_admin_project:True)",
    # images
    "add_image": OWNER_MEMBER,
    "get_images": f"{ADMIN} or role:reader",
    "get_image": f"{ADMIN} or role:reader",
    "modify_image": OWNER_MEMBER,
    "publicize_image": ADMIN,
    "communitize_image": OWNER_MEMBER,
    "delete_image": OWNER_MEMBER,
    "deactivate": ADMIN,
    "reactivate": ADMIN,
    # image data
    "upload_image": OWNER_MEMBER,
    "download_image": f"{ADMIN} or role:member",
    "stage_image": OWNER_MEMBER,
    "import_image": OWNER_MEMBER,
    # tags are part of the image
    "add_tag": OWNER_MEMBER,
    "delete_tag": OWNER_MEMBER,
    # members
    "add_member": OWNER_MEMBER,
    "delete_member": OWNER_MEMBER,
    "get_member": f"{ADMIN} or (role:reader and (project_id:%(target.owner)s or "
                  "project_id:%(target.member_id)s))",
    "get_members": f"{ADMIN} or (role:reader and (project_id:%(target.owner)s or "
                   "project_id:%(target.member_id)s))",
    "modify_member": f"{ADMIN} or (role:member and project_id:%(target.member_id)s)",
    # discovery
    "get_schemas": f"{ADMIN} or role:reader",
    "stores_info": f"{ADMIN} or role:reader",
    "stores_info_detail": ADMIN,
    "import_info": f"{ADMIN} or role:reader",
}
