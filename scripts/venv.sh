# Sourced by the scripts here: a pinned virtualenv per Python tool, outside the repo (the
# tools pin different dependencies, so they never share one), and waiting for a server
# they start.
#
# venv DIR PACKAGE==VERSION: install PACKAGE into a virtualenv at DIR, once (a marker file
# records a finished install, so an interrupted one is redone).
venv() {
    if [ ! -f "$1/.installed" ]; then
        echo "installing $2 into $1" >&2
        rm -rf "$1"
        python3 -m venv "$1"
        "$1/bin/pip" install --quiet --disable-pip-version-check "$2"
        touch "$1/.installed"
    fi
}

# wait_until PID TRIES DELAY COMMAND...: run COMMAND until it succeeds, at most TRIES
# times DELAY seconds apart, giving up early once process PID has exited. Succeeds when
# COMMAND did.
wait_until() {
    local pid=$1 tries=$2 delay=$3
    shift 3
    for _ in $(seq 1 "$tries"); do
        if "$@"; then return 0; fi
        if ! kill -0 "$pid" 2>/dev/null; then return 1; fi
        sleep "$delay"
    done
    return 1
}
