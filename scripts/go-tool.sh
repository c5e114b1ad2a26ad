# Sourced by the setup scripts of tools built from the Go module proxy (kustomize, helm):
# one cached, version-checked `go install` into a cache outside the clone,
#   ${DEVENV_CACHE_DIR:-$HOME/.cache/devenv-scheduler}/<name>-<version>/bin/<name>
# Idempotent: once the binary reports the pinned version a second run returns at once.
#
# go_tool NAME VERSION OVERRIDE_VAR PACKAGE LDFLAGS ABOUT -- VERSION_COMMAND...
#   OVERRIDE_VAR  an environment variable that, when set, names a binary to use instead
#   LDFLAGS       the version stamp the project's own release build sets, so the binary's
#                 version command tells the truth (a plain `go install` prints "(devel)")
#   ABOUT         how long the build takes, for the progress line
#   VERSION_COMMAND  prints the binary's version; it must contain v<VERSION>
go_tool() {
  local name="$1" version="$2" override="$3" package="$4" ldflags="$5" about="$6"
  shift 7
  local bin="${DEVENV_CACHE_DIR:-$HOME/.cache/devenv-scheduler}/$name-$version/bin"
  local say="[setup-$name]"

  if [[ -n "${!override:-}" ]]; then
    echo "$say using $override=${!override}"
    return 0
  fi
  if [[ -x "$bin/$name" ]] && "$bin/$name" "$@" 2>/dev/null | grep -q "v$version"; then
    echo "$say $name v$version already in $bin"
    return 0
  fi
  command -v go > /dev/null || { echo "$say error: Go is needed to build $name (go 1.26 or newer)"; return 1; }
  mkdir -p "$bin"

  # -mod=mod lets go resolve from the proxy (checked against the checksum database as
  # configured on this machine); -p 2 fits a 2-core machine; cgo off, as both projects'
  # release builds are.
  echo "$say building $name v$version (go install from the Go module proxy; $about, once)"
  local start=$SECONDS tmp
  tmp="$(mktemp -d "$bin/.build.XXXXXX")"
  # shellcheck disable=SC2064 # expand now: $tmp is local and gone when the trap runs
  trap "rm -rf '$tmp'" EXIT
  GOFLAGS="${GOFLAGS:-} -mod=mod" GOTOOLCHAIN="${GOTOOLCHAIN:-local}" CGO_ENABLED=0 \
    GOBIN="$tmp" go install -p 2 -trimpath -ldflags="-s -w $ldflags" "$package@v$version"
  mv "$tmp/$name" "$bin/$name"
  echo "$say $name built in $((SECONDS - start))s: $("$bin/$name" "$@")"
}
