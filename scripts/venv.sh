# Sourced by the scripts here: a pinned virtualenv per Python tool, outside the repo (the
# tools pin different dependencies, so they never share one).
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
