# Sourced by .ci/run: makes Node 22 LTS (the supported runtime, package.json "engines") the `node`
# of the rest of the script. Where the machine's node is older, it installs the official Linux
# binary from the npm registry (the only registry CI reaches besides Debian's, whose nodejs is
# older still) and puts it first on PATH. CI_NODE_MAJOR=24 runs the suite on another major instead.
#
# The binary comes from node-linux-<arch>, the package that `npm install node@22` itself fetches in
# its preinstall script; installing it directly needs no install script (npm is starting to
# refuse those unless allowed) and brings the headers too, which node-gyp builds need.
want="${CI_NODE_MAJOR:-22}"
have="$(node -p 'process.versions.node.split(".")[0]' 2>/dev/null || echo 0)"
if [ "$have" -lt 22 ] || { [ -n "${CI_NODE_MAJOR:-}" ] && [ "$have" -ne "$want" ]; }; then
  case "$(uname -m)" in
    x86_64) arch=x64 ;;
    aarch64 | arm64) arch=arm64 ;;
    *) echo "no Node $want package for $(uname -m) in the npm registry" >&2; exit 1 ;;
  esac
  node_dir="${XDG_CACHE_HOME:-$HOME/.cache}/tfjs-adapt/node-$want-$arch"
  node_home="$node_dir/node_modules/node-linux-$arch"
  # reused across runs; a newer patch release of the same major is picked up when the cache is cleared
  if ! "$node_home/bin/node" --version >/dev/null 2>&1; then
    echo "this machine has node $have; installing Node $want (node-linux-$arch@$want) from the npm registry into $node_dir"
    npm install --prefix "$node_dir" --no-save --no-audit --no-fund --loglevel=error "node-linux-$arch@$want"
  fi
  export PATH="$node_home/bin:$PATH"
  # native add-ons (node-gyp) must build against this node's headers, not a system node's
  export npm_config_nodedir="$node_home"
fi
echo "node $(node --version), npm $(npm --version)"
