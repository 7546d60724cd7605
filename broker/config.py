"""Broker configuration: frozen attrs values, loaded from TOML, validated with named ranges.

Every knob the daemon has lives here, grouped the way the TOML file is::

    data_dir = "./dualmq-data"

    [log]                 # defaults for every topic's partitions (topics may override some)
    segment_bytes = 1073741824
    retention_ms = 604800000
    fsync = "interval"    # always | interval | never
    flush_interval_ms = 1000

    [kafka]               # pull mode
    listen = "127.0.0.1:9092"
    num_partitions = 1

    [resp]                # push mode
    listen = "127.0.0.1:6379"
    pubsub_hard_limit = 33554432

    [http]                # metrics and the live dashboard; off unless given
    listen = "127.0.0.1:9644"

    [cluster]             # cluster mode (docs/cluster.md); off unless etcd is given
    etcd = "etcd://127.0.0.1:2379"
    node_id = 1
    lease_ttl_seconds = 10

Unknown keys and bad values are refused when the config is built, with the key, the value and
the allowed range in the message (``ConfigError``), so a typo never silently falls back to a
default. ``attrs.evolve`` derives variants (CLI flags override the file that way).
"""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any

import attrs

from broker.errors import ConfigError
from broker.security.kafka_users import KafkaUser, parse_users
from broker.security.redis_users import RespUser, parse_resp_users

KiB = 1024
MiB = 1024 * KiB
GiB = 1024 * MiB
HOUR_MS = 3600 * 1000
DAY_MS = 24 * HOUR_MS

FSYNC_POLICIES = ("always", "interval", "never")
# Kafka's listener security protocols: TLS or not, SASL or not.
SECURITY_PROTOCOLS = ("PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL")
SASL_MECHANISMS = ("PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512")
# Kafka's ssl.client.auth values: whether a client certificate is asked for, and required.
CLIENT_AUTH = ("none", "requested", "required")
INT32_MAX = 2**31 - 1
INT64_MAX = 2**63 - 1


def _int_range(low: int, high: int, *, allow: tuple[int, ...] = ()) -> Any:
    """An attrs validator: an int in [low, high] (or one of ``allow``), never a bool."""

    extra = f" or {', '.join(map(str, allow))}" if allow else ""

    def check(instance: Any, attribute: attrs.Attribute, value: Any) -> None:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(
                f"{_qualified(instance, attribute)} = {value!r}: expected an integer "
                f"in [{low}, {high}]{extra}"
            )
        if value in allow:
            return
        if not low <= value <= high:
            raise ConfigError(
                f"{_qualified(instance, attribute)} = {value!r}: allowed range is "
                f"[{low}, {high}]{extra}"
            )

    return check


def _ranged(default: int, low: int, high: int, *, allow: tuple[int, ...] = ()) -> Any:
    """An int field in [low, high] (or one of ``allow``), with that range in its metadata.

    The range is readable as ``attrs.fields(cls).<name>.metadata["range"]`` = ``(low, high,
    allow)``, so that a front-end changing the setting at run time (push mode's CONFIG SET)
    states the same bounds in its error as the config file's check does.
    """
    return attrs.field(default=default, validator=_int_range(low, high, allow=allow),
                       metadata={"range": (low, high, allow)})


def _one_of(choices: tuple[str, ...]) -> Any:
    def check(instance: Any, attribute: attrs.Attribute, value: Any) -> None:
        if value not in choices:
            raise ConfigError(
                f"{_qualified(instance, attribute)} = {value!r}: allowed values are "
                f"{', '.join(choices)}"
            )

    return check


def _bool(instance: Any, attribute: attrs.Attribute, value: Any) -> None:
    if not isinstance(value, bool):
        raise ConfigError(f"{_qualified(instance, attribute)} = {value!r}: expected true or false")


def _string_list(choices: tuple[str, ...] | None = None) -> Any:
    """An attrs validator: a tuple of strings, each one of ``choices`` when given."""

    def check(instance: Any, attribute: attrs.Attribute, value: Any) -> None:
        if not all(isinstance(item, str) for item in value):
            raise ConfigError(f"{_qualified(instance, attribute)} = {list(value)!r}: expected a list of strings")
        bad = [item for item in value if choices is not None and item not in choices]
        if bad:
            raise ConfigError(f"{_qualified(instance, attribute)}: {', '.join(bad)} not allowed; "
                              f"allowed values are {', '.join(choices)}")

    return check


def _to_tuple(value: Any) -> Any:
    return tuple(value) if isinstance(value, list) else value


def _listen_address(instance: Any, attribute: attrs.Attribute, value: Any) -> None:
    try:
        parse_host_port(value)
    except ValueError as exc:
        raise ConfigError(f"{_qualified(instance, attribute)} = {value!r}: {exc}") from None


def _optional_listen_address(instance: Any, attribute: attrs.Attribute, value: Any) -> None:
    if value != "":
        _listen_address(instance, attribute, value)


def _qualified(instance: Any, attribute: attrs.Attribute) -> str:
    section = getattr(type(instance), "SECTION", "")
    return f"{section}.{attribute.name}" if section else attribute.name


def parse_host_port(text: str) -> tuple[str, int]:
    """Split ``HOST:PORT`` (``[v6]:PORT`` for IPv6); port 0 means "pick a free port".

    Raises:
        ValueError: with a message naming what is wrong.
    """
    if not isinstance(text, str) or ":" not in text:
        raise ValueError("expected HOST:PORT")
    host, _, port_text = text.rpartition(":")
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    if not host:
        raise ValueError("expected HOST:PORT, the host is empty")
    try:
        port = int(port_text)
    except ValueError:
        raise ValueError(f"port {port_text!r} is not a number") from None
    if not 0 <= port <= 65535:
        raise ValueError(f"port {port} is outside [0, 65535]")
    return host, port


@attrs.frozen(kw_only=True)
class LogConfig:
    """The retained log: segment, retention and flush settings.

    ``segment_bytes``, ``segment_ms``, ``retention_ms``, ``retention_bytes`` and
    ``max_message_bytes`` are topic defaults that a topic may override (Kafka's
    ``segment.bytes`` and friends). ``fsync``, ``flush_interval_ms``,
    ``index_interval_bytes`` and ``max_open_segment_files`` are broker-wide.
    ``retention_ms`` / ``retention_bytes`` of -1 mean "no limit", as in Kafka.
    """

    SECTION = "log"

    segment_bytes: int = attrs.field(default=1 * GiB, validator=_int_range(14, INT32_MAX))
    segment_ms: int = attrs.field(default=7 * DAY_MS, validator=_int_range(1, INT64_MAX))
    retention_ms: int = attrs.field(default=7 * DAY_MS, validator=_int_range(0, INT64_MAX, allow=(-1,)))
    retention_bytes: int = attrs.field(default=-1, validator=_int_range(0, INT64_MAX, allow=(-1,)))
    # Kafka's default message.max.bytes: 1 MiB plus the 12-byte log overhead.
    max_message_bytes: int = attrs.field(default=1 * MiB + 12, validator=_int_range(61, INT32_MAX))
    # One sparse index entry per this many bytes of batches (Kafka's index.interval.bytes).
    index_interval_bytes: int = attrs.field(default=4096, validator=_int_range(0, INT32_MAX))
    fsync: str = attrs.field(default="interval", validator=_one_of(FSYNC_POLICIES))
    flush_interval_ms: int = attrs.field(default=1000, validator=_int_range(1, HOUR_MS))
    # Broker-wide: how many sealed segments' .log files may be open at once (a shared LRU
    # cache; the active segment of each partition keeps its own three files open besides).
    # 0 = derive it from the open-file limit: an eighth of it, within [16, 4096]. Kafka has no
    # such setting: it keeps every segment open and needs a high ``ulimit -n`` instead.
    max_open_segment_files: int = attrs.field(default=0, validator=_int_range(1, 1_000_000, allow=(0,)))
    # Cluster mode: the fewest in-sync replicas an ``acks=all`` write needs, else
    # NOT_ENOUGH_REPLICAS (Kafka's min.insync.replicas, a topic config; docs/cluster.md).
    min_insync_replicas: int = attrs.field(default=1, validator=_int_range(1, INT32_MAX))


@attrs.frozen(kw_only=True)
class KafkaConfig:
    """Pull mode's Kafka listener and protocol limits."""

    SECTION = "kafka"

    listen: str = attrs.field(default="127.0.0.1:9092", validator=_listen_address)
    # The address put in Metadata responses; empty means "the address we listen on".
    advertised: str = attrs.field(default="", validator=attrs.validators.instance_of(str))
    node_id: int = attrs.field(default=0, validator=_int_range(0, INT32_MAX))
    cluster_id: str = attrs.field(default="dualmq-cluster", validator=attrs.validators.instance_of(str))
    auto_create_topics: bool = attrs.field(default=True, validator=_bool)
    num_partitions: int = attrs.field(default=1, validator=_int_range(1, 10000))
    # Largest request frame accepted (Kafka's socket.request.max.bytes).
    max_request_bytes: int = attrs.field(default=100 * MiB, validator=_int_range(1024, INT32_MAX))
    # Bytes of partially received requests held over all connections (Kafka's
    # queued.max.request.bytes); -1 = no limit. Kafka stops reading every socket when over
    # it; we close the connection holding the most instead, so a few clients that never
    # finish their requests cannot stall everyone else. Kafka's default is -1; ours is a
    # cap, at least a few requests of the largest size.
    queued_max_request_bytes: int = attrs.field(
        default=512 * MiB, validator=_int_range(1024, INT64_MAX, allow=(-1,)))
    max_connections: int = attrs.field(default=10000, validator=_int_range(1, 1_000_000))
    # Open connections from one IP address (Kafka's max.connections.per.ip, default
    # 2147483647); ours defaults to the max_connections default, so nothing changes unless set.
    max_connections_per_ip: int = attrs.field(default=10000, validator=_int_range(1, 1_000_000))
    # Consumer groups (Kafka's group.* broker settings).
    group_initial_rebalance_delay_ms: int = attrs.field(default=3000, validator=_int_range(0, 300_000))
    group_min_session_timeout_ms: int = attrs.field(default=6000, validator=_int_range(1, INT32_MAX))
    group_max_session_timeout_ms: int = attrs.field(default=1_800_000, validator=_int_range(1, INT32_MAX))
    # Security (docs in README "Securing the broker"). The listener's protocol, as Kafka's
    # listener.security.protocol.map names it: TLS (the [tls] table) and/or SASL.
    security_protocol: str = attrs.field(default="PLAINTEXT", validator=_one_of(SECURITY_PROTOCOLS))
    # Kafka's sasl.enabled.mechanisms.
    sasl_mechanisms: tuple[str, ...] = attrs.field(default=SASL_MECHANISMS, converter=_to_tuple,
                                                   validator=_string_list(SASL_MECHANISMS))
    # [[kafka.users]] tables: name and password (salted and hashed here, at load) or password_hash.
    users: tuple[KafkaUser, ...] = attrs.field(factory=tuple, converter=parse_users)
    # Kafka's authorizer.class.name set (true) or not; ACLs are kept in <data_dir>/acls.json.
    authorizer: bool = attrs.field(default=False, validator=_bool)
    # Kafka's super.users: principals ("User:admin") the authorizer allows everything.
    super_users: tuple[str, ...] = attrs.field(factory=tuple, converter=_to_tuple, validator=_string_list())
    # Kafka's allow.everyone.if.no.acl.found: a resource no ACL mentions is open to all.
    allow_everyone_if_no_acl_found: bool = attrs.field(default=False, validator=_bool)
    # Kafka's connections.max.reauth.ms (KIP-368): a SASL session lasts this long, then the client
    # must re-authenticate on the same connection or have it closed; 0 = sessions never expire.
    connections_max_reauth_ms: int = attrs.field(default=0, validator=_int_range(0, INT64_MAX))

    @property
    def uses_sasl(self) -> bool:
        return self.security_protocol.startswith("SASL_")

    @property
    def uses_tls(self) -> bool:
        return self.security_protocol in ("SSL", "SASL_SSL")

    def __attrs_post_init__(self) -> None:
        bad_principals = [p for p in self.super_users if not p.startswith("User:")]
        if bad_principals:
            raise ConfigError(f"kafka.super_users: {', '.join(bad_principals)}: a principal is User:<name>")
        if self.uses_sasl and not self.sasl_mechanisms:
            raise ConfigError(f"kafka.sasl_mechanisms is empty but kafka.security_protocol = "
                              f"{self.security_protocol!r} needs at least one")
        # Kafka's own rule: a total smaller than one request would refuse every large one.
        if self.queued_max_request_bytes != -1 and self.queued_max_request_bytes < self.max_request_bytes:
            raise ConfigError(
                f"kafka.queued_max_request_bytes = {self.queued_max_request_bytes}: must be -1 or at "
                f"least kafka.max_request_bytes ({self.max_request_bytes})"
            )


@attrs.frozen(kw_only=True)
class RespConfig:
    """Push mode's RESP listener and Redis-compatible limits.

    The ``pubsub_*`` trio is Redis's ``client-output-buffer-limit pubsub <hard> <soft>
    <soft-seconds>``; 0 disables a limit, exactly as in Redis.
    """

    SECTION = "resp"

    listen: str = attrs.field(default="127.0.0.1:6379", validator=_listen_address)
    # Redis's range (an unsigned int); the operating system's open-file limit bounds it anyway.
    maxclients: int = _ranged(10000, 1, 2**32 - 1)
    # Open connections from one IP address. Redis has no such limit (this is Kafka's
    # max.connections.per.ip); the default equals the maxclients default, so nothing changes
    # unless set.
    maxclients_per_ip: int = attrs.field(default=10000, validator=_int_range(1, 1_000_000))
    # Unparsed request bytes one client may hold before it is closed (Redis
    # client-query-buffer-limit: same default, same 1 MiB minimum).
    client_query_buffer_limit: int = _ranged(1 * GiB, 1 * MiB, INT64_MAX)
    # Unparsed request bytes over all clients; over it, the client holding the most is closed
    # (Redis maxmemory-clients, whose client eviction does the same but also counts output
    # buffers; Redis's default is 0 = no limit, ours a cap). 0 = no limit.
    maxmemory_clients: int = _ranged(1 * GiB, 1 * MiB, INT64_MAX, allow=(0,))
    # Idle seconds before a non-subscribed client is closed; 0 = never (Redis ``timeout``).
    timeout: int = _ranged(0, 0, INT32_MAX)
    proto_max_bulk_len: int = _ranged(512 * MiB, 1 * MiB, INT64_MAX)
    pubsub_hard_limit: int = _ranged(32 * MiB, 0, INT64_MAX)
    pubsub_soft_limit: int = _ranged(8 * MiB, 0, INT64_MAX)
    pubsub_soft_seconds: int = _ranged(60, 0, INT32_MAX)
    # Whether the SHUTDOWN command may stop the whole broker (both modes). Off by default:
    # Redis lets any client stop the server; a broker shared by two protocols should not,
    # unless its operator says so. Redis has no such switch (it has ACLs for that).
    enable_shutdown: bool = attrs.field(default=False, validator=_bool)
    # --- security (docs/resp.md#acl) ---
    # The ``default`` user's password (Redis ``requirepass``); empty: none, anyone may connect
    # as ``default``. Kept out of reprs so that it never reaches a log line.
    requirepass: str = attrs.field(default="", validator=attrs.validators.instance_of(str), repr=False)
    # A Redis ACL file (Redis ``aclfile``): one ``user <name> <rules>`` line per user, read
    # at start and by ACL LOAD, written by ACL SAVE. Empty: none.
    aclfile: str = attrs.field(default="", validator=attrs.validators.instance_of(str))
    # Redis ``protected-mode``: while ``default`` has no password, clients from anywhere but
    # 127.0.0.1 / ::1 are refused with Redis's -DENIED message.
    protected_mode: bool = attrs.field(default=True, validator=_bool)
    # Redis ``acl-pubsub-default``: the channels a new ACL user starts with.
    acl_pubsub_default: str = attrs.field(default="resetchannels",
                                          validator=_one_of(("resetchannels", "allchannels")))
    # Redis ``acllog-max-len``: refusals ACL LOG remembers.
    acllog_max_len: int = _ranged(128, 0, INT64_MAX)
    # ACL users defined here ([[resp.users]] tables); not together with ``aclfile``, as in Redis.
    users: tuple[RespUser, ...] = attrs.field(factory=tuple, converter=parse_resp_users)
    # Serve RESP over TLS with the [tls] certificate (Redis's tls-port, on this listener).
    tls: bool = attrs.field(default=False, validator=_bool)

    def __attrs_post_init__(self) -> None:
        if self.users and self.aclfile:
            raise ConfigError("resp.users and resp.aclfile cannot both be set: define the users in one "
                              "place (Redis refuses users in redis.conf together with an aclfile)")
        names = [user.name for user in self.users]
        duplicates = sorted({name for name in names if names.count(name) > 1})
        if duplicates:
            raise ConfigError(f"resp.users: user {duplicates[0]!r} is defined more than once")


@attrs.frozen(kw_only=True)
class HttpConfig:
    """The HTTP listener serving ``/metrics`` (Prometheus) and the live dashboard.

    Off by default (``listen = ""``): neither Kafka nor Redis opens an HTTP port unasked, and
    an operator should choose where one appears. Neither has this key (Kafka exposes JMX,
    Redis INFO); docs/observability.md describes what is served.
    """

    SECTION = "http"

    listen: str = attrs.field(default="", validator=_optional_listen_address)


@attrs.frozen(kw_only=True)
class TlsConfig:
    """The certificate both listeners use when they speak TLS (Kafka's ssl.*, Redis's tls-*).

    ``ca_file`` holds the certificates client certificates are checked against
    (Kafka ``ssl.truststore.location``, Redis ``tls-ca-cert-file``); ``client_auth`` is
    Kafka's ``ssl.client.auth`` (Redis ``tls-auth-clients``: no / optional / yes).
    """

    SECTION = "tls"

    cert_file: str = attrs.field(default="", validator=attrs.validators.instance_of(str))
    key_file: str = attrs.field(default="", validator=attrs.validators.instance_of(str))
    ca_file: str = attrs.field(default="", validator=attrs.validators.instance_of(str))
    client_auth: str = attrs.field(default="none", validator=_one_of(CLIENT_AUTH))

    def __attrs_post_init__(self) -> None:
        if bool(self.cert_file) != bool(self.key_file):
            raise ConfigError("tls.cert_file and tls.key_file go together: give both or neither")
        if self.client_auth != "none" and not self.ca_file:
            raise ConfigError(f"tls.client_auth = {self.client_auth!r} needs tls.ca_file (the CA that "
                              f"signs client certificates)")

    @property
    def configured(self) -> bool:
        return bool(self.cert_file)


def parse_etcd_url(text: str) -> list[str]:
    """``etcd://HOST:PORT[,HOST:PORT...]`` -> ``["HOST:PORT", ...]``.

    Raises:
        ValueError: with a message naming what is wrong.
    """
    if not isinstance(text, str) or not text.startswith("etcd://"):
        raise ValueError("expected etcd://HOST:PORT[,HOST:PORT...]")
    endpoints = text.removeprefix("etcd://").split(",")
    for endpoint in endpoints:
        host, port = parse_host_port(endpoint)
        if port == 0:
            raise ValueError(f"{endpoint}: etcd's port cannot be 0")
    return endpoints


def _etcd_url(instance: Any, attribute: attrs.Attribute, value: Any) -> None:
    if value == "":
        return
    try:
        parse_etcd_url(value)
    except ValueError as exc:
        raise ConfigError(f"{_qualified(instance, attribute)} = {value!r}: {exc}") from None


@attrs.frozen(kw_only=True)
class ClusterConfig:
    """Cluster mode (docs/cluster.md): off unless ``etcd`` is set.

    ``node_id`` is the broker's id in the cluster (Kafka's ``broker.id`` / ``node.id``);
    ``lease_ttl_seconds`` how long a broker that stopped renewing its etcd lease still counts
    as alive (Kafka's ``zookeeper.session.timeout.ms``, in seconds as etcd leases are).
    """

    SECTION = "cluster"

    etcd: str = attrs.field(default="", validator=_etcd_url)
    node_id: int = attrs.field(default=-1, validator=_int_range(0, INT32_MAX, allow=(-1,)))
    lease_ttl_seconds: int = attrs.field(default=10, validator=_int_range(1, 300))
    # A follower that has not caught up with the leader's log end for this long leaves the ISR
    # (Kafka's replica.lag.time.max.ms, same default).
    replica_lag_time_max_ms: int = attrs.field(default=30_000, validator=_int_range(100, HOUR_MS))
    # How often each partition's high watermark is written to its high-watermark-checkpoint
    # file, when it changed (Kafka's replica.high.watermark.checkpoint.interval.ms, same
    # default); a clean stop writes it too. A restart starts the high watermark from it.
    high_watermark_checkpoint_interval_ms: int = attrs.field(default=5000, validator=_int_range(10, HOUR_MS))
    # The internal topic __consumer_offsets that holds groups' committed offsets
    # (docs/cluster.md#groups): its partition count (Kafka's offsets.topic.num.partitions; fixed
    # once the topic exists), its replication factor, capped at the live brokers when created
    # (offsets.topic.replication.factor), how long its records are kept (offsets.retention.minutes,
    # applied as the topic's retention.ms; -1 keeps every record) and how long an OffsetCommit
    # waits for its record to reach every in-sync replica (offsets.commit.timeout.ms).
    offsets_topic_num_partitions: int = attrs.field(default=10, validator=_int_range(1, 1000))
    offsets_topic_replication_factor: int = attrs.field(default=3, validator=_int_range(1, 100))
    offsets_retention_minutes: int = attrs.field(default=7 * 24 * 60, validator=_int_range(1, 10**9, allow=(-1,)))
    offsets_commit_timeout_ms: int = attrs.field(default=5000, validator=_int_range(1, HOUR_MS))

    @property
    def enabled(self) -> bool:
        return bool(self.etcd)

    @property
    def endpoints(self) -> list[str]:
        return parse_etcd_url(self.etcd) if self.etcd else []


@attrs.frozen(kw_only=True)
class BrokerConfig:
    """The whole broker. Build it with ``BrokerConfig.from_toml`` or keyword arguments."""

    data_dir: Path = attrs.field(default=Path("./dualmq-data"), converter=Path)
    # How often retention and age-based segment rolls are applied.
    maintenance_interval_ms: int = attrs.field(default=5000, validator=_int_range(10, DAY_MS))
    log: LogConfig = attrs.field(factory=LogConfig)
    kafka: KafkaConfig = attrs.field(factory=KafkaConfig)
    resp: RespConfig = attrs.field(factory=RespConfig)
    http: HttpConfig = attrs.field(factory=HttpConfig)
    tls: TlsConfig = attrs.field(factory=TlsConfig)
    cluster: ClusterConfig = attrs.field(factory=ClusterConfig)

    def __attrs_post_init__(self) -> None:
        cluster = self.cluster
        if cluster.enabled and cluster.node_id < 0:
            raise ConfigError("cluster.etcd is set but cluster.node_id is not: every broker of a cluster needs "
                              "its own id (dualmq serve --node-id N)")
        if cluster.enabled and self.kafka.node_id not in (0, cluster.node_id):
            raise ConfigError(f"kafka.node_id = {self.kafka.node_id} and cluster.node_id = {cluster.node_id}: "
                              "in cluster mode the broker has one id; set cluster.node_id only")
        if cluster.enabled and self.resp.tls:
            # The links that forward PUBLISH between brokers speak plaintext RESP (docs/cluster.md):
            # with a TLS RESP listener they could not connect, and pub/sub would stay on each broker.
            raise ConfigError("resp.tls = true is not supported in cluster mode yet: the brokers forward PUBLISH "
                              "to each other over plaintext RESP; turn resp.tls off or run a single broker")
        needs = [name for name, wanted in (("kafka.security_protocol = " + repr(self.kafka.security_protocol),
                                            self.kafka.uses_tls), ("resp.tls = true", self.resp.tls)) if wanted]
        if needs and not self.tls.configured:
            raise ConfigError(f"{' and '.join(needs)} needs a certificate: set tls.cert_file and tls.key_file")

    @classmethod
    def from_toml(cls, path: str | Path) -> BrokerConfig:
        """Load a config file.

        Raises:
            ConfigError: unreadable file, TOML syntax error, unknown key or bad value.
        """
        try:
            with open(path, "rb") as f:
                raw = tomllib.load(f)
        except OSError as exc:
            raise ConfigError(f"cannot read config file {path}: {exc.strerror}") from None
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"config file {path} is not valid TOML: {exc}") from None
        return cls.from_dict(raw)

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> BrokerConfig:
        """Build from nested dicts shaped like the TOML file.

        Raises:
            ConfigError: unknown key or bad value, naming the key.
        """
        sections = {"log": LogConfig, "kafka": KafkaConfig, "resp": RespConfig, "http": HttpConfig, "tls": TlsConfig,
                    "cluster": ClusterConfig}
        top_level = {a.name for a in attrs.fields(cls)} - set(sections)
        kwargs: dict[str, Any] = {}
        for key, value in raw.items():
            if key in sections:
                if not isinstance(value, dict):
                    raise ConfigError(f"[{key}] must be a table")
                kwargs[key] = _build(sections[key], value, prefix=f"{key}.")
            elif key in top_level:
                kwargs[key] = value
            else:
                raise ConfigError(f"unknown config key {key!r}; known: {', '.join(sorted(top_level | set(sections)))}")
        return _build(cls, kwargs, prefix="")


def _build(cls: type, values: dict[str, Any], *, prefix: str) -> Any:
    known = {a.name for a in attrs.fields(cls)}
    for key in values:
        if key not in known:
            raise ConfigError(f"unknown config key {prefix}{key!r}; known: {', '.join(sorted(known))}")
    try:
        return cls(**values)
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"bad value in [{prefix.rstrip('.') or 'top level'}]: {exc}") from None


# Per-topic overrides, by their Kafka names (what CreateTopics and DescribeConfigs speak).
TOPIC_CONFIG_KEYS: dict[str, str] = {
    "retention.ms": "retention_ms",
    "retention.bytes": "retention_bytes",
    "segment.bytes": "segment_bytes",
    "segment.ms": "segment_ms",
    "max.message.bytes": "max_message_bytes",
    "min.insync.replicas": "min_insync_replicas",
}


def topic_log_config(base: LogConfig, overrides: dict[str, str]) -> LogConfig:
    """The effective log config of a topic: ``base`` with its Kafka-named overrides applied.

    ``cleanup.policy=delete`` is accepted (it is what we do); anything else is refused.

    Raises:
        ConfigError: unknown key or a value that is not a valid integer in range.
    """
    changes: dict[str, int] = {}
    for name, text in overrides.items():
        if name == "cleanup.policy":
            if text != "delete":
                raise ConfigError(f"cleanup.policy = {text!r}: only 'delete' is supported")
            continue
        field = TOPIC_CONFIG_KEYS.get(name)
        if field is None:
            raise ConfigError(
                f"unknown topic config {name!r}; supported: cleanup.policy, {', '.join(TOPIC_CONFIG_KEYS)}"
            )
        try:
            changes[field] = int(text)
        except (TypeError, ValueError):
            changes[field] = text  # refused below by the field's validator, which names the range
    try:
        return attrs.evolve(base, **changes)
    except ConfigError as exc:
        message = str(exc)
        for kafka_name, attribute in TOPIC_CONFIG_KEYS.items():  # name it as the user wrote it
            message = message.replace(f"log.{attribute} =", f"topic config {kafka_name} =")
        raise ConfigError(message) from None
