# shellcheck shell=bash
# Shared helpers for scripts/test and scripts/run. Source it; do not execute it.

# Print a message to stderr, prefixed with the calling script's name.
log() {
    printf '%s: %s\n' "${SKIFF_SCRIPT:-skiff}" "$*" >&2
}

# Print a message and exit with status 1.
die() {
    log "error: $*"
    exit 1
}

# Run a command as root: directly when we are root, through sudo otherwise.
as_root() {
    if [ "$(id -u)" -eq 0 ]; then
        "$@"
    elif command -v sudo >/dev/null 2>&1; then
        sudo "$@"
    else
        die "need root to run '$*' and sudo is not installed"
    fi
}

# Install Debian packages (non-interactively); runs `apt-get update` first.
apt_install() {
    [ "$#" -gt 0 ] || return 0
    command -v apt-get >/dev/null 2>&1 \
        || die "missing packages ($*) and apt-get is not available; install them by hand"
    log "installing: $*"
    as_root env DEBIAN_FRONTEND=noninteractive apt-get update -qq
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$@"
}

# Install every Debian package skiff's build, tests and `scripts/run` need that this machine
# lacks: protoc *and* the protobuf include files (etcd-client's build script needs both), etcd,
# docker-registry, a static busybox (the local test and example images), flock, kill, curl and
# the Python Kubernetes client. Both README
# commands call this, so a fresh Debian machine with Rust and Docker needs nothing by hand.
install_prerequisites() {
    command -v cargo >/dev/null 2>&1 || die "cargo not found: install Rust first (https://rustup.rs)"
    local pkgs=()
    command -v protoc >/dev/null 2>&1 || pkgs+=(protobuf-compiler)
    [ -f /usr/include/google/protobuf/descriptor.proto ] || pkgs+=(libprotobuf-dev)
    command -v etcd >/dev/null 2>&1 || pkgs+=(etcd-server)
    [ -x /usr/bin/docker-registry ] || pkgs+=(docker-registry)
    find_static_busybox >/dev/null || pkgs+=(busybox-static)
    command -v flock >/dev/null 2>&1 || pkgs+=(util-linux)
    # The e2e harness stops the daemons it starts with the kill program (not bash's builtin),
    # which minimal Debian systems and images lack.
    type -P kill >/dev/null 2>&1 || pkgs+=(procps)
    # scripts/run checks the TLS endpoints with curl; the e2e tests drive the official Python
    # client from Debian's package, with Debian's own python3.
    command -v curl >/dev/null 2>&1 || pkgs+=(curl)
    /usr/bin/python3 -c 'import kubernetes' >/dev/null 2>&1 || pkgs+=(python3-kubernetes)
    if ! docker info >/dev/null 2>&1 && ! command -v docker >/dev/null 2>&1; then
        pkgs+=(docker.io)
    fi
    apt_install "${pkgs[@]}"
    ensure_docker
    command -v kubectl >/dev/null 2>&1 \
        || log "warning: kubectl not found; tests that drive kubectl will fail (Debian: kubernetes-client)"
}

# Make sure a Docker Engine answers, starting the service if it is installed but down.
ensure_docker() {
    docker info >/dev/null 2>&1 && return 0
    log "Docker Engine not answering; trying to start it"
    if command -v systemctl >/dev/null 2>&1 && [ -d /run/systemd/system ]; then
        as_root systemctl start docker || true
    elif command -v service >/dev/null 2>&1; then
        as_root service docker start || true
    fi
    wait_until 30 "the Docker Engine" docker_answers \
        || die "no Docker Engine answers 'docker info' (is dockerd running, and may $(id -un) use it?)"
}

docker_answers() {
    docker info >/dev/null 2>&1
}

# Succeed when something accepts TCP connections on 127.0.0.1:PORT.
port_in_use() {
    # shellcheck disable=SC2016 # expanded by the inner shell
    timeout 2 bash -c 'exec 3<>"/dev/tcp/127.0.0.1/$0"' "$1" 2>/dev/null
}

# Fetch http://127.0.0.1:PORT/PATH with plain bash (no curl needed); print the whole response
# (status line, headers, body). Fails when nothing answers within 3 seconds.
http_get() {
    local port=$1 path=$2
    # shellcheck disable=SC2016 # expanded by the inner shell
    timeout 3 bash -c '
        exec 3<>"/dev/tcp/127.0.0.1/$0" || exit 1
        printf "GET %s HTTP/1.0\r\nHost: 127.0.0.1:%s\r\nConnection: close\r\n\r\n" "$1" "$0" >&3
        cat <&3
    ' "$port" "$path" 2>/dev/null
}

# Succeed when GET http://127.0.0.1:PORT/PATH answers 200 and, if given, its response
# contains NEEDLE.
http_ok() {
    local port=$1 path=$2 needle=${3:-} response
    response=$(http_get "$port" "$path") || return 1
    case "${response%%$'\r'*}" in
        HTTP/1.?\ 200*) ;;
        *) return 1 ;;
    esac
    [ -z "$needle" ] || [[ "$response" == *"$needle"* ]]
}

# wait_until SECONDS DESCRIPTION COMMAND...: run COMMAND every 0.2 s until it succeeds;
# fail after SECONDS with a message naming DESCRIPTION.
wait_until() {
    local seconds=$1 what=$2 deadline
    shift 2
    deadline=$((SECONDS + seconds))
    until "$@"; do
        if [ "$SECONDS" -ge "$deadline" ]; then
            log "timed out after ${seconds}s waiting for $what"
            return 1
        fi
        sleep 0.2
    done
}

# Succeed when PID is a live process whose command name is COMM (guards against pid reuse).
# The kernel keeps only the first 15 characters of a command name.
pid_is() {
    local pid=$1 comm=${2:0:15}
    [ -n "$pid" ] && [ -r "/proc/$pid/comm" ] && [ "$(cat "/proc/$pid/comm" 2>/dev/null)" = "$comm" ]
}

# Send SIGTERM to PID, wait up to 10 s for it to exit, then SIGKILL it.
stop_pid() {
    local pid=$1 deadline
    kill -TERM "$pid" 2>/dev/null || return 0
    deadline=$((SECONDS + 10))
    while kill -0 "$pid" 2>/dev/null && [ "$SECONDS" -lt "$deadline" ]; do
        sleep 0.1
    done
    kill -KILL "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
}

# Print the path of a statically linked busybox, or fail when there is none.
find_static_busybox() {
    local candidate
    for candidate in /bin/busybox /usr/bin/busybox /usr/bin/busybox-static /bin/busybox-static; do
        [ -x "$candidate" ] || continue
        # ldd exits non-zero ("not a dynamic executable") for static binaries.
        if ! ldd "$candidate" >/dev/null 2>&1; then
            printf '%s\n' "$candidate"
            return 0
        fi
    done
    return 1
}

# Succeed when the local Docker Engine has image REF.
docker_has_image() {
    docker image inspect "$1" >/dev/null 2>&1
}

# build_busybox_image TAG: build a tiny image TAG with `docker import` from the static busybox:
# /bin/busybox plus one symlink per applet, /tmp, a minimal /etc/passwd and /etc/group, and
# CMD ["/bin/sh"]. No network is needed.
build_busybox_image() {
    local tag=$1 busybox rootfs applet
    busybox=$(find_static_busybox) || die "no statically linked busybox found (install busybox-static)"
    rootfs=$(mktemp -d "${TMPDIR:-/tmp}/skiff-rootfs.XXXXXX")
    mkdir -p "$rootfs"/{bin,etc,tmp,root,proc,sys,dev,var/tmp,usr}
    chmod 1777 "$rootfs/tmp" "$rootfs/var/tmp"
    cp "$busybox" "$rootfs/bin/busybox"
    while IFS= read -r applet; do
        [ -n "$applet" ] && [ "$applet" != busybox ] && ln -sf busybox "$rootfs/bin/$applet"
    done < <("$busybox" --list)
    # Everything lives in /bin; the usual other PATH directories point at it.
    ln -s bin "$rootfs/sbin"
    ln -s ../bin "$rootfs/usr/bin"
    ln -s ../bin "$rootfs/usr/sbin"
    printf 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n' \
        >"$rootfs/etc/passwd"
    printf 'root:x:0:\nnogroup:x:65534:\n' >"$rootfs/etc/group"
    if ! tar --numeric-owner --owner=0 --group=0 -C "$rootfs" -cf - . \
        | docker import \
            -c 'CMD ["/bin/sh"]' \
            -c 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
            -m "skiff test image: static busybox" \
            - "$tag" >/dev/null; then
        rm -rf "$rootfs"
        die "docker import of $tag failed"
    fi
    rm -rf "$rootfs"
}
