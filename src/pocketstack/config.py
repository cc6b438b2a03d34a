"""Typed settings: one TOML file, environment overrides, command-line overrides.

Precedence, lowest first: the defaults below, the TOML file, environment variables, then what
the command line passes. An environment variable names a section and a key:
``POCKETSTACK_IDENTITY__PORT=5001`` sets ``[identity] port``; top-level keys drop the section
(``POCKETSTACK_ADMIN_PASSWORD``). Every option carries its default and a one-line doc, and
:func:`render_toml` turns them into the commented file ``pocketstack up`` writes on first start.
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError

ENV_PREFIX = "POCKETSTACK_"


class ConfigError(Exception):
    """The configuration cannot be loaded; the message says which option and why."""


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True)


class DatabaseSettings(_Section):
    url: str = Field(
        "",
        description="SQLAlchemy URL of the control database; empty means SQLite at "
        "<data_dir>/control.db (e.g. postgresql+psycopg://user:pw@host/db).",
    )
    echo: bool = Field(False, description="Log every SQL statement (debugging only).")


class IdentitySettings(_Section):
    enabled: bool = Field(True, description="Run the identity service (Keystone v3).")
    port: int = Field(5000, ge=0, le=65535, description="TCP port of the identity API.")
    token_expiration: int = Field(
        3600, ge=60, description="Lifetime of a new token in seconds (Keystone default: 1 h)."
    )
    allow_expired_window: int = Field(
        172800, ge=0, description="Seconds after expiry a service may still validate a token "
        "with allow_expired (Keystone default: 48 h)."
    )
    bcrypt_rounds: int = Field(
        12, ge=4, le=31, description="bcrypt cost factor for password hashes (Keystone default)."
    )
    max_active_keys: int = Field(
        3, ge=2, description="Fernet keys kept by rotation: staged + primary + secondaries."
    )
    max_request_body_size: int = Field(
        114688, ge=1024, description="Largest accepted request body in bytes (Keystone default)."
    )
    max_password_length: int = Field(
        4096, ge=8, description="Longest accepted password (Keystone default)."
    )
    list_limit: int = Field(
        0, ge=0, description="Cap on list results (0: unlimited, Keystone's default)."
    )
    policy_file: str = Field(
        "", description="YAML file of policy rule overrides for the identity API."
    )
    cache_time: int = Field(
        600, ge=0, description="Seconds a cached identity lookup (roles, catalog) may live "
        "before it is rebuilt; writes in this process invalidate at once."
    )


class PolicySettings(_Section):
    index: int = Field(ge=0, description="Storage policy index (0 is the first policy).")
    name: str = Field(min_length=1, max_length=64, description="Policy name clients use.")
    replicas: int = Field(3, ge=1, le=6, description="Replica count of the policy's ring.")
    default: bool = Field(False, description="New containers without X-Storage-Policy use it.")


def _default_policies() -> list[PolicySettings]:
    return [PolicySettings(index=0, name="default", replicas=3, default=True),
            PolicySettings(index=1, name="single", replicas=1)]


class ResellerPrefixSettings(_Section):
    prefix: str = Field(max_length=64, description="Account name prefix, e.g. AUTH_ "
                        "(keystoneauth's reseller_prefix entries).")
    service_roles: list[str] = Field(default_factory=list, description="Roles an "
                                     "X-Service-Token must carry, besides the owner's token, "
                                     "for these accounts (empty: no service token needed).")


def _default_reseller_prefixes() -> list[ResellerPrefixSettings]:
    return [ResellerPrefixSettings(prefix="AUTH_"),
            ResellerPrefixSettings(prefix="SERVICE_", service_roles=["service"])]


class ObjectStoreSettings(_Section):
    enabled: bool = Field(True, description="Run object storage (Swift v1).")
    port: int = Field(8080, ge=0, le=65535, description="TCP port of the object storage API.")
    workers: int = Field(1, ge=1, le=64, description="Processes serving the object storage "
                         "API on its port (the first also runs identity, image and the "
                         "background daemons; the others are forked from it).")
    devices: int = Field(3, ge=0, le=64, description="Storage devices (directories) created "
                         "under <data_dir>/devices on first start, one zone each; 0: a "
                         "proxy only (no local devices: every ring device is reached at its "
                         "storage node, and the cluster's rings and hash_path.json must be in "
                         "<data_dir>/rings before the first start).")
    replicas: int = Field(3, ge=1, le=6, description="Replicas of accounts and containers "
                          "(object replicas are per storage policy).")
    part_power: int = Field(10, ge=4, le=20, description="Ring partition power "
                            "(2**part_power partitions) of rings built on first start.")
    min_part_hours: int = Field(1, ge=0, description="Hours before a partition may move again.")
    policies: list[PolicySettings] = Field(default_factory=_default_policies,
                                           description="Storage policies.")
    hash_path_prefix: str = Field("", description="Secret salt of every placement hash; "
                                  "empty: generated on first start into <data_dir>/rings.")
    hash_path_suffix: str = Field("", description="Second secret salt (see hash_path_prefix).")
    storage_ip: str = Field("127.0.0.1", description="Address of this host's devices in the "
                            "rings (what other hosts reach its storage node at).")
    storage_port: int = Field(6200, ge=1, le=65535, description="Port of this host's "
                              "devices in the rings.")
    reseller_prefix: str = Field("AUTH_", description="Account name prefix of project accounts.")
    operator_roles: list[str] = Field(default_factory=lambda: ["admin", "member"],
                                      description="Roles that own their project's account.")
    reseller_admin_role: str = Field("ResellerAdmin",
                                     description="Role that reaches every account.")
    service_roles: list[str] = Field(default_factory=lambda: ["service"],
                                     description="Roles an X-Service-Token must carry.")
    chunk_size: int = Field(262144, ge=4096, description="Bytes per read/write of object "
                            "data (a PUT's first write; later ones gather 4 chunks).")
    node_timeout: float = Field(10.0, gt=0, description="Seconds a storage operation may take.")
    read_threads: int = Field(2, ge=1, le=256, description="Threads that open objects for "
                              "GET and read their metadata for HEAD, per process. Each "
                              "thread running at once adds GIL hand-offs, but one alone "
                              "makes reads wait on the event loop (see "
                              "docs/performance.md); raise it for many or slow disks.")
    io_threads: int = Field(3, ge=1, le=256, description="Threads for every other disk and "
                            "database step (writes and their fsyncs, deletes, container "
                            "and account databases, replication), per process.")
    ring_check_interval: float = Field(15.0, ge=0, description="Seconds between checks of "
                                       "the ring files for a new version (Swift's default).")
    recheck_info_seconds: float = Field(10.0, ge=0, description="How long the proxy caches "
                                        "account and container info.")
    expirer_interval: float = Field(10.0, gt=0, description="Seconds between expirer passes.")
    updater_interval: float = Field(10.0, gt=0, description="Seconds between replays of "
                                    "failed container updates.")
    fsync: bool = Field(True, description="fsync object data and metadata before "
                        "acknowledging a write (never disable in production).")
    cors_allow_origin: list[str] = Field(default_factory=list, description="Origins allowed "
                                         "by CORS for every container.")
    strict_cors_mode: bool = Field(True, description="Only expose CORS headers to allowed "
                                   "origins.")
    reseller_prefixes: list[ResellerPrefixSettings] = Field(
        default_factory=_default_reseller_prefixes, description="Account prefixes served "
        "(reseller_prefix is always one): a project's operator owns <prefix><project id>; "
        "SERVICE_ accounts hold a service's data for a project and need its service token.")
    # -- features (issue 4), Swift's middleware options with Swift's defaults --------------
    slo_max_manifest_segments: int = Field(1000, ge=1, description="Segments a static "
                                           "large object manifest may list.")
    slo_max_manifest_size: int = Field(8 * 1024 * 1024, ge=1024, description="Largest "
                                       "static large object manifest, in bytes.")
    slo_min_segment_size: int = Field(1, ge=1, description="Smallest segment (but the "
                                      "last) of a static large object, in bytes.")
    dlo_max_get_time: int = Field(86400, ge=1, description="Seconds a dynamic large "
                                  "object GET may run.")
    tempurl_methods: list[str] = Field(
        default_factory=lambda: ["GET", "HEAD", "PUT", "POST", "DELETE"],
        description="Methods a TempURL may be signed for.")
    tempurl_allowed_digests: list[str] = Field(
        default_factory=lambda: ["sha1", "sha256", "sha512"],
        description="HMAC digests TempURL and FormPost signatures may use.")
    bulk_max_containers_per_extraction: int = Field(10000, ge=1, description="Containers "
                                                    "one archive extraction may create.")
    bulk_max_failed_extractions: int = Field(1000, ge=1, description="Failed files before "
                                             "an extraction stops.")
    bulk_max_deletes_per_request: int = Field(10000, ge=1, description="Paths one bulk "
                                              "delete may name.")
    bulk_max_failed_deletes: int = Field(1000, ge=1, description="Failed deletes before a "
                                         "bulk delete stops.")
    allow_versioned_writes: bool = Field(True, description="Serve legacy versioning "
                                         "(X-Versions-Location, X-History-Location).")
    allow_object_versioning: bool = Field(True, description="Serve object versioning "
                                          "(X-Versions-Enabled, version ids).")
    symloop_max: int = Field(2, ge=1, description="Symlinks a request may follow in a row.")
    # -- background daemons (issue 5): replicator, auditor ----------------------------------
    replicator_interval: float = Field(30.0, ge=0, description="Seconds between replication "
                                       "passes (0: only when asked, POST /recon/replicator).")
    replicator_concurrency: int = Field(4, ge=1, description="Partitions a replication pass "
                                        "works on at once.")
    replicator_bytes_per_second: int = Field(0, ge=0, description="Object bytes replication "
                                             "may push per second (0: no limit).")
    reclaim_age: float = Field(7 * 24 * 3600.0, gt=0, description="Seconds tombstones "
                               "(deleted objects, rows, databases) are kept before removal; "
                               "longer than any outage a replica may come back from.")
    auditor_interval: float = Field(300.0, ge=0, description="Seconds between audit passes "
                                    "(0: only when asked, POST /recon/auditor).")
    auditor_bytes_per_second: int = Field(10_000_000, ge=0, description="Bytes the auditor "
                                          "may read per second (0: no limit).")
    auditor_files_per_second: float = Field(20.0, ge=0, description="Files and databases the "
                                            "auditor may check per second (0: no limit).")


def _default_disk_formats() -> list[str]:
    return ["ami", "ari", "aki", "vhd", "vhdx", "vmdk", "raw", "qcow2", "vdi", "iso", "ploop"]


def _default_container_formats() -> list[str]:
    return ["ami", "ari", "aki", "bare", "ovf", "ova", "docker", "compressed"]


class ImageSettings(_Section):
    enabled: bool = Field(True, description="Run the image service (Glance v2).")
    port: int = Field(9292, ge=0, le=65535, description="TCP port of the image API.")
    store: Literal["swift", "file"] = Field(
        "swift", description="Where image data lives: swift (object storage, reached "
        "through its public API as the service user) or file (<data_dir>/image/images).")
    swift_container: str = Field("glance", min_length=1, max_length=256,
                                 description="Container of image data in the service "
                                 "project's object storage account.")
    auth_url: str = Field("", description="Identity v3 URL the image service authenticates "
                          "its service user at; empty: this cloud's identity service.")
    region: str = Field("", description="Region of the object-store endpoint to use; "
                        "empty: the cloud's region.")
    service_user: str = Field("glance", min_length=1, description="Name of the image "
                              "service's user (Default domain), created on first start.")
    service_project: str = Field("service", min_length=1, description="Project of the "
                                 "service users (Default domain), created on first start.")
    max_image_size: int = Field(1099511627776, ge=1, description="Largest image in bytes "
                                "(Glance's image_size_cap: 1 TiB); the swift store "
                                "caps it at object storage's 5 GiB object limit.")
    image_count_quota: int = Field(0, ge=0, description="Images a project may own "
                                   "(0: unlimited).")
    image_size_quota: int = Field(0, ge=0, description="Total bytes of image data a "
                                  "project may store (0: unlimited).")
    member_quota: int = Field(128, ge=0, description="Members per image (Glance's "
                              "image_member_quota; 0: unlimited).")
    property_quota: int = Field(128, ge=0, description="Additional properties per image "
                                "(Glance's image_property_quota; 0: unlimited).")
    tag_quota: int = Field(128, ge=0, description="Tags per image (Glance's image_tag_quota; "
                           "0: unlimited).")
    limit_param_default: int = Field(25, ge=1, description="Page size of image lists "
                                     "without ?limit (Glance default).")
    api_limit_max: int = Field(1000, ge=1, description="Largest page of an image list "
                               "(Glance default).")
    disk_formats: list[str] = Field(default_factory=_default_disk_formats,
                                    description="Accepted disk_format values.")
    container_formats: list[str] = Field(default_factory=_default_container_formats,
                                         description="Accepted container_format values.")
    import_methods: list[Literal["glance-direct"]] = Field(
        default_factory=lambda: ["glance-direct"],
        description="Interoperable import methods offered (web-download is not built).")
    policy_file: str = Field("", description="YAML file of policy rule overrides for the "
                             "image API.")
    chunk_size: int = Field(65536, ge=4096, description="Bytes per read of image data.")
    store_timeout: float = Field(60.0, gt=0, description="Seconds the image service waits "
                                 "on object storage or identity for one read or write.")
    max_request_body_size: int = Field(65536, ge=1024, description="Largest JSON request "
                                       "body in bytes (image data is not limited by this).")


class Settings(BaseModel):
    """Everything pocketstack can be told. Build with :func:`load_settings`."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True)

    data_dir: Path = Field(Path("data"), description="Where all state lives.")
    host: str = Field("127.0.0.1", description="Address every service binds.")
    public_host: str = Field(
        "", description="Host name clients use in catalog URLs; empty: the bind address "
        "(127.0.0.1 when binding 0.0.0.0)."
    )
    region: str = Field("RegionOne", description="Region of the catalog's endpoints.")
    admin_password: SecretStr | None = Field(
        None, description="Bootstrap admin password; generated and printed once when unset.",
    )
    admin_user: str = Field("admin", description="Name of the bootstrap admin user.")
    admin_project: str = Field("admin", description="Name of the bootstrap admin project.")
    log_level: str = Field("info", description="Log level: debug, info, warning, error.")
    access_log: bool = Field(True, description="Log one line per request.")
    database: DatabaseSettings = Field(default_factory=DatabaseSettings)
    identity: IdentitySettings = Field(default_factory=IdentitySettings)
    objectstore: ObjectStoreSettings = Field(default_factory=ObjectStoreSettings)
    image: ImageSettings = Field(default_factory=ImageSettings)

    @property
    def database_url(self) -> str:
        return self.database.url or f"sqlite:///{self.data_dir.resolve() / 'control.db'}"

    @property
    def advertised_host(self) -> str:
        if self.public_host:
            return self.public_host
        return "127.0.0.1" if self.host in ("0.0.0.0", "::", "") else self.host

    def url_for(self, port: int, path: str = "") -> str:
        host = self.advertised_host
        if ":" in host and not host.startswith("["):
            host = f"[{host}]"
        return f"http://{host}:{port}{path}"


def load_settings(
    config_file: Path | None = None,
    *,
    environ: Mapping[str, str] | None = None,
    overrides: Mapping[str, Any] | None = None,
) -> Settings:
    """Defaults < TOML file < environment < ``overrides`` (dotted keys: ``identity.port``)."""
    data: dict[str, Any] = {}
    if config_file is not None:
        data = _read_toml(config_file)
    _merge(data, _from_environ(os.environ if environ is None else environ))
    for dotted, value in (overrides or {}).items():
        if value is not None:
            _merge(data, _nest(dotted.split("."), value))
    try:
        return Settings.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(_explain(exc)) from exc


def _read_toml(path: Path) -> dict[str, Any]:
    try:
        with path.open("rb") as fh:
            return tomllib.load(fh)
    except FileNotFoundError as exc:
        raise ConfigError(f"config file not found: {path}") from exc
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: invalid TOML: {exc}") from exc


def _from_environ(environ: Mapping[str, str]) -> dict[str, Any]:
    sections = {
        name for name, field in Settings.model_fields.items()
        if isinstance(field.annotation, type) and issubclass(field.annotation, BaseModel)
    }
    data: dict[str, Any] = {}
    for key, value in environ.items():
        if not key.startswith(ENV_PREFIX):
            continue
        path = key[len(ENV_PREFIX):].lower().split("__")
        top_level = len(path) == 1 and path[0] in Settings.model_fields \
            and path[0] not in sections
        if top_level or (len(path) == 2 and path[0] in sections):
            _merge(data, _nest(path, value))
    return data


def _nest(path: list[str], value: Any) -> dict[str, Any]:
    out: dict[str, Any] = {path[-1]: value}
    for part in reversed(path[:-1]):
        out = {part: out}
    return out


def _merge(into: dict[str, Any], other: Mapping[str, Any]) -> None:
    for key, value in other.items():
        if isinstance(value, Mapping) and isinstance(into.get(key), dict):
            _merge(into[key], value)
        elif isinstance(value, Mapping):
            into[key] = dict(value)
        else:
            into[key] = value


def _explain(exc: ValidationError) -> str:
    lines = []
    for err in exc.errors():
        where = ".".join(str(p) for p in err["loc"])
        lines.append(f"{where}: {err['msg']}")
    return "invalid configuration: " + "; ".join(lines)


def render_toml(settings: Settings, *, include_secrets: bool = False) -> str:
    """The settings as a commented TOML document (every option with its doc line)."""
    out = ["# pocketstack configuration. Every option is shown with its doc line.", ""]
    nested = []
    for name, field in Settings.model_fields.items():
        value = getattr(settings, name)
        if isinstance(value, BaseModel):
            nested.append((name, value))
            continue
        out.extend(_toml_option(name, value, field.description, include_secrets))
    for section, model in nested:
        out.extend(["", f"[{section}]"])
        tables = []
        for name, field in type(model).model_fields.items():
            value = getattr(model, name)
            if isinstance(value, list) and value and isinstance(value[0], BaseModel):
                tables.append((name, field.description, value))
                continue
            out.extend(_toml_option(name, value, field.description, include_secrets))
        for name, doc, items in tables:
            out.append(f"# {doc}")
            for item in items:
                out.extend(["", f"[[{section}.{name}]]"])
                for key in type(item).model_fields:
                    out.append(f"{key} = {_toml_value(getattr(item, key))}")
    return "\n".join(out) + "\n"


def _toml_option(name: str, value: Any, doc: str | None, include_secrets: bool) -> list[str]:
    lines = [f"# {doc}"] if doc else []
    if isinstance(value, SecretStr):
        value = value.get_secret_value() if include_secrets else None
    if value is None:
        lines.append(f"# {name} =")
    else:
        lines.append(f"{name} = {_toml_value(value)}")
    return lines


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, list | tuple):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    text = str(value).replace("\\", "\\\\").replace('"', '\\"')
    return f'"{text}"'
