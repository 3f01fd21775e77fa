# Shared set-up for scripts/test, scripts/demo and .ci/run: installs what the tests and the demo
# need when it is missing, from Debian's packages and the IdP's committed npm lockfile. Nothing
# else is downloaded. Source it from the repository root; every function is idempotent.

# Runs apt-get as root, or through sudo; says what to install by hand otherwise.
_apt_install() {
  local runner=()
  if [ "$(id -u)" -ne 0 ]; then
    if command -v sudo >/dev/null 2>&1; then
      runner=(sudo)
    else
      echo "setup: please install these Debian packages (as root): $*" >&2
      return 1
    fi
  fi
  if [ -z "${_APT_UPDATED:-}" ]; then
    "${runner[@]}" apt-get update -qq
    _APT_UPDATED=1
  fi
  DEBIAN_FRONTEND=noninteractive "${runner[@]}" apt-get install -y -qq --no-install-recommends "$@"
}

# Node.js with npm (the test IdP, panva oidc-provider, needs Node.js >= 20).
ensure_node() {
  if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
    echo "setup: installing Node.js and npm (Debian packages)…" >&2
    _apt_install nodejs npm
  fi
  local major
  major="$(node -p 'process.versions.node.split(".")[0]' 2>/dev/null || echo 0)"
  if [ "$major" -lt 20 ]; then
    echo "setup: Node.js >= 20 is needed for the test IdP; this machine has $(node --version)" >&2
    return 1
  fi
}

# The test IdP's npm packages, from tests/idp/package-lock.json.
ensure_idp_packages() {
  ensure_node
  if [ ! -d tests/idp/node_modules/oidc-provider ] \
    || [ tests/idp/package-lock.json -nt tests/idp/node_modules/.package-lock.json ]; then
    echo "setup: installing the test IdP's packages (npm ci)…" >&2
    (cd tests/idp && npm ci --no-audit --no-fund --loglevel=error)
  fi
}

# Headless Chromium and chromedriver (the real-browser tests), redis-server and redis-cli (the
# Redis tests; redis-cli also creates the test Redis Cluster).
ensure_test_tools() {
  local missing=()
  [ -x /usr/bin/chromium ] || missing+=(chromium)
  [ -x /usr/bin/chromedriver ] || missing+=(chromium-driver)
  command -v redis-server >/dev/null 2>&1 || missing+=(redis-server)
  command -v redis-cli >/dev/null 2>&1 || missing+=(redis-tools)
  if [ "${#missing[@]}" -gt 0 ]; then
    echo "setup: installing ${missing[*]} (Debian packages)…" >&2
    _apt_install "${missing[@]}"
  fi
}

# Starts one redis-server on a free loopback port for the whole run and exports REDIS_URL
# (tests that need a server of their own still spawn one). Stopped when the shell exits.
start_shared_redis() {
  local port=6399
  while (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; do
    port=$((port + 1))
  done
  redis-server --port "$port" --bind 127.0.0.1 --save "" --appendonly no --daemonize no \
    --loglevel warning --dir "${TMPDIR:-/tmp}" </dev/null >/dev/null &
  _REDIS_PID=$!
  trap 'kill "$_REDIS_PID" 2>/dev/null || true; wait "$_REDIS_PID" 2>/dev/null || true' EXIT
  for _ in $(seq 100); do
    [ "$(redis-cli -p "$port" ping 2>/dev/null)" = PONG ] && break
    kill -0 "$_REDIS_PID" 2>/dev/null || { echo "setup: redis-server exited" >&2; return 1; }
    sleep 0.1
  done
  [ "$(redis-cli -p "$port" ping 2>/dev/null)" = PONG ] \
    || { echo "setup: redis-server did not answer PING" >&2; return 1; }
  export REDIS_URL="redis://127.0.0.1:$port"
  echo "setup: REDIS_URL=$REDIS_URL" >&2
}
