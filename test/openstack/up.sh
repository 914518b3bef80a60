#!/usr/bin/env bash
# Starts a real, small OpenStack on loopback for testing zonal's OpenStack driver:
# RabbitMQ, Keystone, Placement, Glance, Nova (api, conductor, scheduler, six
# nova-compute with the fake driver, zones z1..z3 as host aggregates) and a Neutron
# STUB (test/openstack/neutron-stub.ts). Every process runs in its own process group,
# listed in DIR/pids; test/openstack/down.sh DIR stops exactly those.
#
#   bash test/openstack/up.sh DIR [BASE_PORT]     # DIR: new or empty; BASE_PORT: 25000
#
# When it returns 0, DIR/env (shell exports) and DIR/clouds.yaml (cloud "zonal-test")
# say how to reach it. Set ZONAL_OS_DEBUG=1 for debug logs in DIR/logs.
set -euo pipefail

if [ $# -lt 1 ] || [ $# -gt 2 ]; then
  echo "usage: bash test/openstack/up.sh DIR [BASE_PORT]" >&2
  exit 2
fi
if [ -e "$1" ] && [ -n "$(ls -A "$1" 2>/dev/null)" ]; then
  echo "up.sh: $1 is not empty; give a new directory (stop an old one with down.sh first)" >&2
  exit 2
fi
BASE=${2:-25000}
case $BASE in '' | *[!0-9]*) echo "up.sh: BASE_PORT must be a number" >&2; exit 2 ;; esac
if [ "$(id -u)" != 0 ]; then
  echo "up.sh: run as root (it installs packages and runs the services as root)" >&2
  exit 2
fi
mkdir -p "$1"
DIR=$(cd "$1" && pwd)
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)

PORT_AMQP=$BASE
PORT_DIST=$((BASE + 1))
PORT_EPMD=$((BASE + 2))
PORT_KEYSTONE=$((BASE + 3))
PORT_PLACEMENT=$((BASE + 4))
PORT_GLANCE=$((BASE + 5))
PORT_NOVA=$((BASE + 6))
PORT_NEUTRON=$((BASE + 7))
PORT_PG=$((BASE + 8))
PG_BIN=/usr/lib/postgresql/15/bin
COMPUTES="c1 c2 c3 c4 c5 c6"

START=$(date +%s%N)
say() { printf '[up %6.1fs] %s\n' "$(( ($(date +%s%N) - START) / 1000000 ))e-3" "$*"; }

# ---------------------------------------------------------------- cleanup on failure
READY=0
POLICY_SAVED="" # set while our policy-rc.d is in place: "none" or the saved copy
restore_policy() {
  case $POLICY_SAVED in
    "") return ;;
    none) rm -f /usr/sbin/policy-rc.d ;;
    *) mv -f "$POLICY_SAVED" /usr/sbin/policy-rc.d ;;
  esac
  POLICY_SAVED=""
}
on_exit() {
  local status=$?
  restore_policy
  if [ "$READY" != 1 ]; then
    echo "up.sh: failed (exit $status); stopping what it started. Logs: $DIR/logs" >&2
    bash "$HERE/down.sh" "$DIR" >&2 || true
  fi
}
trap on_exit EXIT
trap 'exit 130' INT TERM

# ---------------------------------------------------------------- packages
PACKAGES="python3-keystone python3-nova python3-placement python3-glance rabbitmq-server
  uwsgi-core uwsgi-plugin-python3 sqlite3 postgresql-15 python3-psycopg2"
missing=""
for p in $PACKAGES; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
done
if [ -n "$missing" ]; then
  say "installing$missing"
  # Keep the packages' services from starting (there is no systemd; they would start
  # system-wide instances on the default ports): policy-rc.d says no while apt runs.
  POLICY_SAVED=none
  if [ -e /usr/sbin/policy-rc.d ]; then
    POLICY_SAVED=$(mktemp)
    cp -p /usr/sbin/policy-rc.d "$POLICY_SAVED"
  fi
  printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d
  chmod 755 /usr/sbin/policy-rc.d
  if ! { apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends $missing; }; then
    restore_policy
    echo "up.sh: apt-get install failed" >&2
    exit 1
  fi
  restore_policy
fi

# ---------------------------------------------------------------- the neutron stub's build
STUB_JS="$ROOT/dist/test/openstack/neutron-stub.js"
if [ ! -f "$STUB_JS" ] || [ -n "$(find "$HERE" -maxdepth 1 -name 'neutron-*.ts' -newer "$STUB_JS")" ]; then
  # Only the stub's own files (the project's build compiles them to the same place).
  say "compiling the neutron stub into dist/test/openstack"
  (cd "$ROOT" && npx tsc --target ES2022 --module NodeNext --moduleResolution NodeNext --lib ES2023 \
    --types node --strict --noUncheckedIndexedAccess --noImplicitOverride --noFallthroughCasesInSwitch --skipLibCheck --sourceMap \
    --rootDir test/openstack --outDir dist/test/openstack test/openstack/neutron-stub.ts)
fi

read -r NETWORK_ID FLOATING_NETWORK_ID < <(node -e \
  'import(process.argv[1]).then((m) => console.log(m.NETWORK_ID, m.EXT_NETWORK_ID))' \
  "$ROOT/dist/test/openstack/neutron-state.js")

# ---------------------------------------------------------------- layout and configs
mkdir -p "$DIR"/{logs,db,lock,etc/keystone,etc/placement,etc/glance,etc/nova,keystone,glance/images,glance/staging,glance/tasks,glance/cache,nova/instances,rabbitmq/mnesia,rabbitmq/home}
: >"$DIR/pids"
PASSWORD=$(head -c 12 /dev/urandom | od -An -tx1 | tr -d ' \n')
DEBUG=false
[ "${ZONAL_OS_DEBUG:-}" = 1 ] && DEBUG=true
render() { # template destination [HOST]
  sed -e "s|@DIR@|$DIR|g" -e "s|@PASSWORD@|$PASSWORD|g" -e "s|@DEBUG@|$DEBUG|g" \
    -e "s|@PORT_AMQP@|$PORT_AMQP|g" -e "s|@PORT_KEYSTONE@|$PORT_KEYSTONE|g" \
    -e "s|@PORT_GLANCE@|$PORT_GLANCE|g" -e "s|@PORT_NOVA@|$PORT_NOVA|g" -e "s|@PORT_PG@|$PORT_PG|g" \
    -e "s|@HOST@|${3:-}|g" "$HERE/conf/$1" >"$2"
}
render rabbitmq.conf "$DIR/rabbitmq/rabbitmq.conf"
render keystone.conf "$DIR/etc/keystone/keystone.conf"
render placement.conf "$DIR/etc/placement/placement.conf"
render glance-api.conf "$DIR/etc/glance/glance-api.conf"
render glance-api-paste.ini "$DIR/etc/glance/glance-api-paste.ini"
render nova.conf "$DIR/etc/nova/nova.conf"
render nova-db.conf "$DIR/etc/nova/nova-db.conf"
render nova-api-paste.ini "$DIR/etc/nova/api-paste.ini"
for c in $COMPUTES; do
  mkdir -p "$DIR/nova/$c/instances"
  render nova-compute.conf "$DIR/etc/nova/nova-$c.conf" "$c"
done
echo '[].' >"$DIR/rabbitmq/enabled_plugins"
: >"$DIR/rabbitmq/rabbitmq-env.conf"

# ---------------------------------------------------------------- helpers
# start NAME COMMAND...: runs COMMAND as the leader of a new process group, output to
# DIR/logs/NAME.log, and records "NAME PID STARTTIME" in DIR/pids (PID = the group's id;
# STARTTIME from /proc/PID/stat, so down.sh can tell a reused PID from ours).
start() {
  local name=$1 stat
  shift
  setsid "$@" </dev/null >>"$DIR/logs/$name.log" 2>&1 &
  stat=$(cat "/proc/$!/stat" 2>/dev/null) || stat=""
  echo "$name $! $(echo "${stat##*) }" | awk '{ print $20 }')" >>"$DIR/pids"
}
# Debian's python3, not whatever python3 comes first in PATH (pyenv...).
# nova-* and glance-* console scripts are not in python3-nova / python3-glance: run the
# modules' main() instead. PYMAIN PROG MODULE ARGS... runs MODULE.main() as PROG.
PYCODE='import sys,importlib as i;p,m=sys.argv[1:3];sys.argv=[p]+sys.argv[3:];sys.exit(i.import_module(m).main())'
PYMAIN=(/usr/bin/python3 -c "$PYCODE")
pymain() { /usr/bin/python3 -c "$PYCODE" "$@"; }
nova_manage() {
  pymain nova-manage nova.cmd.manage --config-file "$DIR/etc/nova/nova.conf" \
    --config-file "$DIR/etc/nova/nova-db.conf" "$@"
}
wait_port() { # PORT NAME SECONDS
  local i
  for ((i = 0; i < $3 * 4; i++)); do
    if (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; then return 0; fi
    if ! alive "$2"; then
      echo "up.sh: $2 exited; the end of $DIR/logs/$2.log:" >&2
      tail -n 30 "$DIR/logs/$2.log" >&2
      return 1
    fi
    sleep 0.25
  done
  echo "up.sh: $2 did not listen on 127.0.0.1:$1 within $3 s; see $DIR/logs/$2.log" >&2
  return 1
}
alive() { # NAME: is the group recorded under NAME still there?
  local pid
  pid=$(awk -v n="$1" '$1 == n { print $2 }' "$DIR/pids")
  [ -n "$pid" ] && kill -0 -- "-$pid" 2>/dev/null
}
uwsgi_app() { # NAME PORT WSGI_FILE ENV...
  local name=$1 port=$2 file=$3
  shift 3
  local envs=()
  for e in "$@"; do envs+=(--env "$e"); done
  start "$name" uwsgi --plugin python3 --http-socket "127.0.0.1:$port" --wsgi-file "$file" \
    --master --processes 1 --threads 1 --enable-threads --lazy-apps --need-app \
    --die-on-term --exit-on-reload --no-orphans --buffer-size 65535 --thunder-lock \
    --worker-reload-mercy 5 --reload-mercy 5 --skip-atexit-teardown \
    --add-header "Connection: close" --procname-prefix "zonal-os-$BASE-" "${envs[@]}"
}
for port in $PORT_AMQP $PORT_DIST $PORT_EPMD $PORT_KEYSTONE $PORT_PLACEMENT $PORT_GLANCE $PORT_NOVA $PORT_NEUTRON $PORT_PG; do
  if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
    echo "up.sh: 127.0.0.1:$port is already in use; pick another BASE_PORT" >&2
    exit 1
  fi
done

# ---------------------------------------------------------------- RabbitMQ (own epmd)
# Erlang starts a daemonized epmd of its own when it finds none (outside our process
# groups, so down.sh could not stop it): -start_epmd false, ours is the only one.
say "starting rabbitmq on :$PORT_AMQP"
export ERL_EPMD_PORT=$PORT_EPMD ERL_EPMD_ADDRESS=127.0.0.1
start epmd epmd -port "$PORT_EPMD"
wait_port "$PORT_EPMD" epmd 10
start rabbitmq env HOME="$DIR/rabbitmq/home" \
  RABBITMQ_NODENAME="zonal$BASE@localhost" RABBITMQ_NODE_IP_ADDRESS=127.0.0.1 \
  RABBITMQ_NODE_PORT="$PORT_AMQP" RABBITMQ_DIST_PORT="$PORT_DIST" \
  RABBITMQ_CTL_DIST_PORT_MIN=$((BASE + 10)) RABBITMQ_CTL_DIST_PORT_MAX=$((BASE + 19)) \
  RABBITMQ_MNESIA_BASE="$DIR/rabbitmq/mnesia" RABBITMQ_LOG_BASE="$DIR/logs" \
  RABBITMQ_CONFIG_FILE="$DIR/rabbitmq/rabbitmq.conf" RABBITMQ_CONF_ENV_FILE="$DIR/rabbitmq/rabbitmq-env.conf" \
  RABBITMQ_ENABLED_PLUGINS_FILE="$DIR/rabbitmq/enabled_plugins" RABBITMQ_PID_FILE="$DIR/rabbitmq/pid" \
  RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS="-kernel inet_dist_use_interface {127,0,0,1} -start_epmd false" \
  RABBITMQ_CTL_ERL_ARGS="-start_epmd false" \
  /usr/lib/rabbitmq/bin/rabbitmq-server

# ---------------------------------------------------------------- PostgreSQL for Nova
# Nova's api, conductor and scheduler write at once (and conductor's green threads
# interleave transactions): on SQLite that ends in "database is locked". PostgreSQL
# runs as its own user, so it needs to reach DIR.
say "starting postgresql on :$PORT_PG"
mkdir -p "$DIR/pg"
chown postgres: "$DIR/pg"
AS_PG=(setpriv --reuid=postgres --regid=postgres --init-groups)
if ! "${AS_PG[@]}" test -w "$DIR/pg"; then
  echo "up.sh: the postgres user cannot write $DIR/pg; use a DIR whose parents it can reach (e.g. under /tmp)" >&2
  exit 1
fi
"${AS_PG[@]}" "$PG_BIN/initdb" -D "$DIR/pg/data" -U postgres --auth=trust -E UTF8 --no-sync >"$DIR/logs/initdb.log" 2>&1 ||
  { tail -n 20 "$DIR/logs/initdb.log" >&2; exit 1; }
start postgres "${AS_PG[@]}" "$PG_BIN/postgres" -D "$DIR/pg/data" -p "$PORT_PG" -k "$DIR/pg" \
  -c listen_addresses=127.0.0.1 -c fsync=off -c synchronous_commit=off -c full_page_writes=off \
  -c max_connections=300 -c shared_buffers=64MB

# ---------------------------------------------------------------- REST helper
# One small client (stdlib only) for the steps below: catalog, image, quotas, zones, checks.
cat >"$DIR/osapi.py" <<'PY'
"""REST steps of test/openstack/up.sh. Usage: osapi.py STEP (reads DIR/osapi.json)."""
import json, os, sys, time, urllib.error, urllib.request

CONF = json.load(open(os.path.join(os.path.dirname(os.path.abspath(__file__)), "osapi.json")))
KS = "http://127.0.0.1:%d" % CONF["keystone"]
NOVA = "http://127.0.0.1:%d/v2.1" % CONF["nova"]
GLANCE = "http://127.0.0.1:%d" % CONF["glance"]
PLACEMENT = "http://127.0.0.1:%d" % CONF["placement"]
NEUTRON = "http://127.0.0.1:%d" % CONF["neutron"]
STATE = os.path.join(CONF["dir"], "osapi-state.json")
_token = None


def call(method, url, body=None, headers=None, raw=None, ok=(200, 201, 202, 204), auth=True):
    h = {"Accept": "application/json"}
    data = None
    if body is not None:
        data = json.dumps(body).encode()
        h["Content-Type"] = "application/json"
    if raw is not None:
        data = raw
        h["Content-Type"] = "application/octet-stream"
    if auth:
        h["X-Auth-Token"] = token()
    h.update(headers or {})
    req = urllib.request.Request(url, data=data, headers=h, method=method)
    try:
        with urllib.request.urlopen(req, timeout=60) as res:
            status, text, rh = res.status, res.read().decode(), res.headers
    except urllib.error.HTTPError as e:
        status, text, rh = e.code, e.read().decode(), e.headers
    if ok is not None and status not in ok:
        raise SystemExit("%s %s -> %d %s" % (method, url, status, text[:500]))
    return status, (json.loads(text) if text.strip().startswith(("{", "[")) else text), rh


def token():
    global _token
    if _token is None:
        body = {"auth": {"identity": {"methods": ["password"], "password": {"user": {
            "name": "admin", "domain": {"name": "Default"}, "password": CONF["password"]}}},
            "scope": {"project": {"name": "admin", "domain": {"name": "Default"}}}}}
        _, _, rh = call("POST", KS + "/v3/auth/tokens", body, auth=False)
        _token = rh["X-Subject-Token"]
    return _token


def wait(what, fn, seconds):
    deadline = time.time() + seconds
    last = None
    while time.time() < deadline:
        try:
            last = fn()
            if last:
                return last
        except (urllib.error.URLError, ConnectionError, OSError) as e:
            last = e
        time.sleep(0.5)
    raise SystemExit("timed out after %d s waiting for %s (last: %r)" % (seconds, what, last))


def load():
    return json.load(open(STATE)) if os.path.exists(STATE) else {}


def save(**kw):
    s = load()
    s.update(kw)
    json.dump(s, open(STATE, "w"), indent=1)


def nova(method, path, body=None, version="2.1", ok=(200, 201, 202, 204)):
    return call(method, NOVA + path, body, {"OpenStack-API-Version": "compute " + version}, ok=ok)[:2]


def step_catalog():
    wait("keystone", lambda: up(KS + "/v3"), 120)
    _, projects, _ = call("GET", KS + "/v3/projects?name=admin")
    project_id = projects["projects"][0]["id"]
    services = [("nova", "compute", NOVA), ("placement", "placement", PLACEMENT),
                ("glance", "image", GLANCE), ("neutron", "network", NEUTRON)]
    for name, kind, url in services:
        _, s, _ = call("POST", KS + "/v3/services", {"service": {"name": name, "type": kind, "enabled": True}})
        for interface in ("public", "internal", "admin"):
            call("POST", KS + "/v3/endpoints", {"endpoint": {
                "service_id": s["service"]["id"], "interface": interface, "url": url, "region_id": "RegionOne"}})
    save(project_id=project_id)
    print(project_id)


def up(url):
    try:
        urllib.request.urlopen(url, timeout=5).read()
        return True
    except urllib.error.HTTPError:
        return True  # answering at all is enough


def step_image():
    wait("glance", lambda: up(GLANCE + "/versions"), 120)
    _, img, _ = call("POST", GLANCE + "/v2/images", {
        "name": "zonal-test", "disk_format": "raw", "container_format": "bare", "visibility": "public"})
    call("PUT", GLANCE + "/v2/images/%s/file" % img["id"], raw=os.urandom(64))
    wait("image active", lambda: call("GET", GLANCE + "/v2/images/" + img["id"])[1]["status"] == "active", 60)
    save(image_id=img["id"])
    print(img["id"])


def step_quotas():
    wait("nova-api", lambda: up(NOVA + "/"), 180)
    project_id = load()["project_id"]
    nova("PUT", "/os-quota-sets/" + project_id, {"quota_set": {
        "instances": -1, "cores": -1, "ram": -1, "server_groups": -1, "server_group_members": -1,
        "key_pairs": -1, "metadata_items": -1}})


def step_computes():
    n = int(sys.argv[2])
    def ready():
        _, s = nova("GET", "/os-services?binary=nova-compute")
        return len([x for x in s["services"] if x["state"] == "up"]) >= n
    wait("%d nova-compute services up" % n, ready, 240)


def step_hypervisors():
    n = int(sys.argv[2])
    wait("%d hypervisors" % n, lambda: len(nova("GET", "/os-hypervisors")[1]["hypervisors"]) >= n, 60)


def step_zones():
    def aggregate(name, zone, hosts, metadata=None):
        body = {"aggregate": {"name": name}}
        if zone:
            body["aggregate"]["availability_zone"] = zone
        _, a = nova("POST", "/os-aggregates", body)
        aid = a["aggregate"]["id"]
        if metadata:
            nova("POST", "/os-aggregates/%d/action" % aid, {"set_metadata": {"metadata": metadata}})
        for h in hosts:
            nova("POST", "/os-aggregates/%d/action" % aid, {"add_host": {"host": h}})
    aggregate("z1", "z1", ["c1", "c2"])
    aggregate("z2", "z2", ["c3", "c4"])
    aggregate("z3", "z3", ["c5", "c6"])
    aggregate("ssd", None, ["c1"], {"ssd": "true"})


def server_wait(sid, status, seconds=120):
    def check():
        _, s = nova("GET", "/servers/" + sid)
        st = s["server"]["status"]
        if st == "ERROR":
            raise SystemExit("server %s went to ERROR: %s" % (sid, s["server"].get("fault")))
        return s["server"] if st == status else None
    return wait("server %s %s" % (sid, status), check, seconds)


def server_gone(sid, seconds=120):
    wait("server %s deleted" % sid, lambda: nova("GET", "/servers/" + sid, ok=(200, 404))[0] == 404, seconds)


def step_verify():
    st = load()
    _, v, _ = call("GET", NOVA + "/")
    max_version = v["version"]["version"]
    _, h = nova("GET", "/os-hypervisors/detail")
    hyp = h["hypervisors"]
    bad = [x["hypervisor_hostname"] for x in hyp if x["state"] != "up" or x["status"] != "enabled"]
    if len(hyp) != 6 or bad:
        raise SystemExit("hypervisors: want 6 up and enabled, got %d (not up: %s)" % (len(hyp), bad))
    print("  hypervisors: %s up (%d vcpus, %d MiB, %d GiB each); compute API max microversion %s" % (
        " ".join(sorted(x["hypervisor_hostname"] for x in hyp)), hyp[0]["vcpus"], hyp[0]["memory_mb"],
        hyp[0]["local_gb"], max_version))
    _, z = nova("GET", "/os-availability-zone")
    zones = sorted(x["zoneName"] for x in z["availabilityZoneInfo"] if x["zoneState"]["available"])
    if not {"z1", "z2", "z3"} <= set(zones):
        raise SystemExit("availability zones: want z1 z2 z3, got %s" % zones)
    print("  availability zones: %s" % " ".join(zones))
    _, f = nova("POST", "/flavors", {"flavor": {"name": "zonal-verify", "vcpus": 1, "ram": 64, "disk": 1}})
    flavor = f["flavor"]["id"]
    try:
        t = time.time()
        _, s = nova("POST", "/servers", {"server": {"name": "zonal-verify-none", "imageRef": st["image_id"],
            "flavorRef": flavor, "networks": "none", "availability_zone": "z2"}}, version="2.37")
        sid = s["server"]["id"]
        srv = server_wait(sid, "ACTIVE")
        host = srv["OS-EXT-SRV-ATTR:host"]
        if host not in ("c3", "c4") or srv["OS-EXT-AZ:availability_zone"] != "z2":
            raise SystemExit("server in z2 landed on %s (%s)" % (host, srv["OS-EXT-AZ:availability_zone"]))
        print("  server (networks none, z2): ACTIVE on %s in %.1f s" % (host, time.time() - t))
        t = time.time()
        nova("POST", "/servers/%s/action" % sid, {"os-stop": None})
        server_wait(sid, "SHUTOFF")
        print("  os-stop: SHUTOFF in %.1f s" % (time.time() - t))
        t = time.time()
        nova("DELETE", "/servers/" + sid)
        server_gone(sid)
        print("  delete: gone in %.1f s" % (time.time() - t))

        t = time.time()
        port = call("POST", NEUTRON + "/v2.0/ports", {"port": {
            "network_id": CONF["network_id"], "name": "zonal-verify"}})[1]["port"]
        _, s = nova("POST", "/servers", {"server": {"name": "zonal-verify-port", "imageRef": st["image_id"],
            "flavorRef": flavor, "networks": [{"port": port["id"]}], "availability_zone": "z1"}}, version="2.37")
        sid = s["server"]["id"]
        srv = server_wait(sid, "ACTIVE")
        ips = [a["addr"] for n in srv["addresses"].values() for a in n]
        bound = call("GET", NEUTRON + "/v2.0/ports/" + port["id"])[1]["port"]
        if port["fixed_ips"][0]["ip_address"] not in ips:
            raise SystemExit("server with port: addresses %s lack %s" % (ips, port["fixed_ips"]))
        if bound["device_id"] != sid or bound["binding:host_id"] != srv["OS-EXT-SRV-ATTR:host"]:
            raise SystemExit("port not bound to the server: %s" % bound)
        print("  server (port %s, z1): ACTIVE on %s in %.1f s" % (
            port["fixed_ips"][0]["ip_address"], srv["OS-EXT-SRV-ATTR:host"], time.time() - t))
        t = time.time()
        nova("DELETE", "/servers/" + sid)
        server_gone(sid)
        unbound = call("GET", NEUTRON + "/v2.0/ports/" + port["id"])[1]["port"]
        if unbound["device_id"] or unbound["binding:host_id"]:
            raise SystemExit("port still bound after delete: %s" % unbound)
        call("DELETE", NEUTRON + "/v2.0/ports/" + port["id"])
        print("  delete: gone, port unbound in %.1f s" % (time.time() - t))
    finally:
        nova("DELETE", "/flavors/" + flavor, ok=None)


if __name__ == "__main__":
    {"catalog": step_catalog, "image": step_image, "quotas": step_quotas, "computes": step_computes, "hypervisors": step_hypervisors,
     "zones": step_zones, "verify": step_verify}[sys.argv[1]]()
PY
cat >"$DIR/osapi.json" <<EOF
{"dir": "$DIR", "network_id": "$NETWORK_ID", "password": "$PASSWORD", "keystone": $PORT_KEYSTONE, "placement": $PORT_PLACEMENT,
 "glance": $PORT_GLANCE, "nova": $PORT_NOVA, "neutron": $PORT_NEUTRON}
EOF
osapi() { /usr/bin/python3 "$DIR/osapi.py" "$@"; }

# ---------------------------------------------------------------- databases and services
# Keystone first (everything else authenticates against it); the other databases are
# made meanwhile. Keystone, Placement and Glance keep SQLite (one process each), in
# write-ahead-log mode: oslo.db opens a transaction for every read, and in the default
# mode that read blocks the commit of a writer on another connection of the same process.
wal() { /usr/bin/python3 -c 'import sqlite3, sys; [sqlite3.connect(f).execute("PRAGMA journal_mode=WAL") for f in sys.argv[1:]]' "$@"; }
km() { keystone-manage --config-file "$DIR/etc/keystone/keystone.conf" "$@"; }
background() { # NAME SNIPPET: runs a bash snippet as a process group of its own (in DIR/pids)
  start "$1" bash -c "$2"
  JOBS[$1]=$!
}
finish() { # NAME: waits for a background() job
  if ! wait "${JOBS[$1]}"; then
    echo "up.sh: $1 failed; the end of $DIR/logs/$1.log:" >&2
    tail -n 30 "$DIR/logs/$1.log" >&2
    exit 1
  fi
}
declare -A JOBS
pg_databases() { # NAME...: creates databases once PostgreSQL answers
  local i
  for ((i = 0; i < 120; i++)); do
    "$PG_BIN/pg_isready" -q -h 127.0.0.1 -p "$PORT_PG" && break
    sleep 0.25
  done
  for db in "$@"; do
    "$PG_BIN/psql" -q -h 127.0.0.1 -p "$PORT_PG" -U postgres -c "CREATE DATABASE $db" || return 1
  done
}
# What keystone-manage fernet_setup / credential_setup write (a primary key 1 and a
# staged key 0), without two more seconds-long keystone-manage runs.
fernet_keys() {
  mkdir -p -m 700 "$1"
  /usr/bin/python3 -c 'import base64, os, sys
for n in ("0", "1"):
    with open(os.open(os.path.join(sys.argv[1], n), os.O_WRONLY | os.O_CREAT, 0o600), "w") as f:
        f.write(base64.urlsafe_b64encode(os.urandom(32)).decode())' "$1"
}
# What the snippets below use, for their bash -c.
export DIR PASSWORD PORT_PG PORT_KEYSTONE PG_BIN PYCODE
export -f pymain wal km pg_databases fernet_keys
say "creating databases"
background placement-manage 'placement-manage --config-file "$DIR/etc/placement/placement.conf" db sync &&
  wal "$DIR/db/placement.sqlite"'
background glance-manage 'pymain glance-manage glance.cmd.manage --config-file "$DIR/etc/glance/glance-api.conf" db_sync &&
  wal "$DIR/db/glance.sqlite"'
# nova-manage api_db sync, cell_v2 map_cell0, cell_v2 create_cell --name cell1, db sync:
# in one process, as each nova-manage run spends seconds importing Nova.
background nova-manage 'pg_databases nova_api nova_cell0 nova_cell1 && /usr/bin/python3 - "$DIR" "$PORT_PG" <<"PY"
import sys
from nova import config, objects
from nova.cmd import manage
from oslo_log import log as logging
d, pg = sys.argv[1:3]
config.parse_args(["nova-manage", "--config-file", d + "/etc/nova/nova.conf",
                   "--config-file", d + "/etc/nova/nova-db.conf"])
logging.setup(manage.CONF, "nova")
objects.register_all()
for name, step in [
        ("api_db sync", lambda: manage.ApiDbCommands().sync()),
        ("cell_v2 map_cell0", lambda: manage.CellV2Commands().map_cell0(
            database_connection="postgresql+psycopg2://postgres@127.0.0.1:%s/nova_cell0" % pg)),
        ("cell_v2 create_cell", lambda: manage.CellV2Commands().create_cell(name="cell1")),
        ("db sync", lambda: manage.DbCommands().sync())]:
    print("nova-manage " + name, flush=True)
    rc = step()
    if rc not in (None, 0):
        sys.exit("nova-manage %s failed (%s)" % (name, rc))
PY'
background keystone-manage 'km db_sync && wal "$DIR/db/keystone.sqlite" &&
  fernet_keys "$DIR/keystone/fernet-keys" && fernet_keys "$DIR/keystone/credential-keys" &&
  km bootstrap --bootstrap-password "$PASSWORD" --bootstrap-region-id RegionOne \
    --bootstrap-admin-url "http://127.0.0.1:$PORT_KEYSTONE/v3" \
    --bootstrap-internal-url "http://127.0.0.1:$PORT_KEYSTONE/v3" \
    --bootstrap-public-url "http://127.0.0.1:$PORT_KEYSTONE/v3"'
finish keystone-manage
uwsgi_app keystone "$PORT_KEYSTONE" /usr/bin/keystone-wsgi-public \
  "OS_KEYSTONE_CONFIG_FILES=$DIR/etc/keystone/keystone.conf"
say "keystone database ready, keystone starting"
finish placement-manage
uwsgi_app placement "$PORT_PLACEMENT" /usr/bin/placement-api "OS_PLACEMENT_CONFIG_DIR=$DIR/etc/placement"
finish glance-manage
start glance-api "${PYMAIN[@]}" glance-api glance.cmd.api --config-file "$DIR/etc/glance/glance-api.conf"
say "placement and glance starting"
PROJECT_ID=$(osapi catalog)
say "keystone up, catalog registered (admin project $PROJECT_ID)"
start neutron-stub node "$STUB_JS" --port "$PORT_NEUTRON" --keystone "http://127.0.0.1:$PORT_KEYSTONE" \
  --project-id "$PROJECT_ID" --log "$DIR/logs/neutron-stub.log"
finish nova-manage
say "nova databases ready"
wait_port "$PORT_AMQP" rabbitmq 60
cat >"$DIR/etc/nova/nova-api.wsgi" <<'EOF'
from nova.api.openstack.compute.wsgi import init_application
application = init_application()
EOF
uwsgi_app nova-api "$PORT_NOVA" "$DIR/etc/nova/nova-api.wsgi" "OS_NOVA_CONFIG_DIR=$DIR/etc/nova" \
  "OS_NOVA_CONFIG_FILES=api-paste.ini;nova.conf;nova-db.conf"
NOVA_DB=(--config-file "$DIR/etc/nova/nova.conf" --config-file "$DIR/etc/nova/nova-db.conf")
start nova-conductor "${PYMAIN[@]}" nova-conductor nova.cmd.conductor "${NOVA_DB[@]}"
start nova-scheduler "${PYMAIN[@]}" nova-scheduler nova.cmd.scheduler "${NOVA_DB[@]}"
for c in $COMPUTES; do
  start "nova-compute-$c" "${PYMAIN[@]}" nova-compute nova.cmd.compute \
    --config-file "$DIR/etc/nova/nova.conf" --config-file "$DIR/etc/nova/nova-$c.conf"
done
say "nova starting (api, conductor, scheduler, $COMPUTES)"
wait_port "$PORT_NEUTRON" neutron-stub 30
IMAGE_ID=$(osapi image)
say "image zonal-test uploaded ($IMAGE_ID)"
osapi quotas
say "nova-api up, quotas unlimited for admin"
osapi computes 6
nova_manage cell_v2 discover_hosts >>"$DIR/logs/nova-manage.log" 2>&1
osapi hypervisors 6
say "6 nova-compute up, hosts discovered"
osapi zones
say "zones z1 (c1 ssd, c2), z2 (c3, c4), z3 (c5, c6)"

# ---------------------------------------------------------------- env, clouds.yaml
cat >"$DIR/env" <<EOF
export OS_AUTH_URL=http://127.0.0.1:$PORT_KEYSTONE/v3
export OS_USERNAME=admin
export OS_PASSWORD=$PASSWORD
export OS_PROJECT_NAME=admin
export OS_USER_DOMAIN_NAME=Default
export OS_PROJECT_DOMAIN_NAME=Default
export OS_REGION_NAME=RegionOne
export OS_IDENTITY_API_VERSION=3
export OS_INTERFACE=public
export ZONAL_OS_IMAGE_ID=$IMAGE_ID
export ZONAL_OS_NETWORK_ID=$NETWORK_ID
export ZONAL_OS_FLOATING_NETWORK_ID=$FLOATING_NETWORK_ID
export ZONAL_OS_PROJECT_ID=$PROJECT_ID
export ZONAL_OS_DIR=$DIR
EOF
cat >"$DIR/clouds.yaml" <<EOF
clouds:
  zonal-test:
    auth:
      auth_url: http://127.0.0.1:$PORT_KEYSTONE/v3
      username: admin
      password: "$PASSWORD"
      project_name: admin
      user_domain_name: Default
      project_domain_name: Default
    region_name: RegionOne
    identity_api_version: 3
    interface: public
EOF

# ---------------------------------------------------------------- verify
say "verifying"
osapi verify
READY=1
say "ready: source $DIR/env (or OS_CLIENT_CONFIG_FILE=$DIR/clouds.yaml, cloud zonal-test); stop with: bash test/openstack/down.sh $DIR"
