#!/bin/sh
# Regenerates the shell completion scripts in completions/ for the release
# archives (run by goreleaser's before hook; safe to run by hand).
#
# keymint generates them itself ("keymint completion SHELL"). It runs with
# HOME and the XDG directories pointed at an empty temporary directory and
# without KEYMINT_* variables, so no user config, identity or vault is read
# and the output is the same on every machine.
set -eu

cd "$(dirname "$0")/.."

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT INT TERM

# Build once with the caller's own Go environment (module and build caches
# live under the real HOME), then run the binary in the isolated one.
go build -o "$tmp/keymint" ./cmd/keymint

for v in $(env | sed -n 's/^\(KEYMINT_[A-Za-z0-9_]*\)=.*/\1/p'); do
	unset "$v"
done
mkdir -p "$tmp/home"
HOME="$tmp/home"
XDG_CONFIG_HOME="$tmp/home/.config"
XDG_DATA_HOME="$tmp/home/.local/share"
XDG_STATE_HOME="$tmp/home/.local/state"
XDG_CACHE_HOME="$tmp/home/.cache"
XDG_RUNTIME_DIR="$tmp/run"
export HOME XDG_CONFIG_HOME XDG_DATA_HOME XDG_STATE_HOME XDG_CACHE_HOME XDG_RUNTIME_DIR

mkdir -p completions
for pair in bash:bash zsh:zsh fish:fish powershell:ps1; do
	shell=${pair%%:*}
	ext=${pair#*:}
	out="completions/keymint.$ext"
	"$tmp/keymint" completion "$shell" </dev/null >"$tmp/out"
	if [ ! -s "$tmp/out" ]; then
		echo "completions.sh: 'keymint completion $shell' printed nothing" >&2
		exit 1
	fi
	mv "$tmp/out" "$out"
	echo "wrote $out"
done
