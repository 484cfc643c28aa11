# Sourced by the scripts here: a pinned virtualenv per Python tool, outside the repo (the
# tools pin different dependencies, so they never share one), and waiting for a server
# they start.
#
# venv DIR PACKAGE==VERSION...: install the packages into a virtualenv at DIR, once (a
# marker file records a finished install, so an interrupted one is redone).
venv() {
    local dir=$1
    shift
    if [ ! -f "$dir/.installed" ]; then
        echo "installing $* into $dir" >&2
        rm -rf "$dir"
        python3 -m venv "$dir"
        "$dir/bin/pip" install --quiet --disable-pip-version-check "$@"
        touch "$dir/.installed"
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
